"""``NetworkService``: feeds the plan from nmcli every few seconds and carries out its actions.

Every nmcli call runs in a worker thread (``asyncio.to_thread``): a scan takes seconds and
a connection's activation up to ``network.command_timeout_s``, and the event loop (the
API, the recorder's schedule) never waits for either. The status reads a snapshot.
Stopping the agent leaves the network as it is: a restart must not cut a rig off its AP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from node_agent.network.nmcli import CLIENT_CONNECTION, LinkInfo, Nmcli, NmcliError
from node_agent.network.plan import (
    Action,
    ActionKind,
    Link,
    LinkKind,
    Observation,
    PlanConfig,
    PlanState,
    Seen,
    classify,
    step,
)
from node_agent.network.schemas import (
    ADDRESS_PATTERN,
    ManagerPhase,
    NetworkManagerStatus,
    NetworkMode,
    NetworkStatus,
)
from node_agent.network.secrets import NetworkSecrets
from node_agent.network.settings import NetworkSettings

log = logging.getLogger(__name__)

MAX_ACTIONS_PER_TICK = 6  # a scan, then a join, then a look at the result, ...
MODE_OF_LINK = {
    LinkKind.mesh: NetworkMode.mesh,
    LinkKind.ap_host: NetworkMode.ap_host,
    LinkKind.ap_client: NetworkMode.ap_client,
    LinkKind.other: NetworkMode.wifi,
}


def plan_config(settings: NetworkSettings, cam_id: str, master_cam_id: str) -> PlanConfig:
    """The plan's view of the settings for the node ``cam_id``."""
    return PlanConfig(
        networks=tuple(settings.networks),
        own_ap=settings.ap_ssid(cam_id),
        master_ap=settings.ap_ssid(master_cam_id),
        is_master=cam_id == master_cam_id,
        join_timeout_s=settings.join_timeout_s,
        client_timeout_s=settings.client_timeout_s,
        mesh_retry_s=settings.mesh_retry_s,
        probe_timeout_s=settings.probe_timeout_s,
    )


class NetworkService:
    """The mesh / AP manager of one node (see ``node_agent.network.plan``)."""

    def __init__(
        self,
        settings: NetworkSettings,
        cfg: PlanConfig,
        nmcli: Nmcli,
        secrets: NetworkSecrets | None,
        problem: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.cfg = cfg
        self.nmcli = nmcli
        self.secrets = secrets
        self.problem = problem  # why it cannot run (the secrets file); shown in the status
        self.clock = clock
        self.wall = wall
        self.state = PlanState()
        self._seen: tuple[Seen, ...] = ()
        self._seen_at: float | None = None
        self._link = LinkInfo(connected=False)
        self._signal: int | None = None
        self._last_action: str | None = None
        self._last_action_at: float | None = None  # wall clock
        self._last_error: str | None = problem
        self._last_error_at: float | None = wall() if problem else None
        self.actions = 0
        self.errors = 1 if problem else 0
        self._lock = threading.Lock()  # the snapshot the status reads
        self._ticking = threading.Lock()  # one tick at a time
        self._task: asyncio.Task[None] | None = None

    # -- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start managing on the running event loop (the first tick at once)."""
        if self.problem is not None:
            log.error("network manager not started: %s", self.problem)
            return
        log.info(
            "network manager: %s, networks %s, AP %s%s",
            self.settings.interface,
            ", ".join(self.cfg.networks) or "none",
            self.cfg.own_ap,
            " (the master)" if self.cfg.is_master else f", master's AP {self.cfg.master_ap}",
        )
        self._task = asyncio.create_task(self._run(), name="network-manager")

    async def stop(self) -> None:
        """Stop managing (an nmcli call in progress finishes in its thread)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("network manager round failed")
            await asyncio.sleep(self.settings.poll_interval_s)

    def tick(self) -> Action:
        """Read the link, step the plan, carry out its action; again until it says wait."""
        with self._ticking:
            action = Action(ActionKind.wait)
            for _ in range(MAX_ACTIONS_PER_TICK):
                link = self._read_link()
                obs = Observation(
                    now=self.clock(),
                    link=Link(link.ssid, link.mode == "ap", link.address)
                    if link.connected
                    else Link(),
                    seen=self._seen,
                    seen_at=self._seen_at,
                )
                before = self.state.phase
                state, action = step(self.state, obs, self.cfg)
                with self._lock:
                    self.state = state
                if state.phase != before:
                    log.info("network: %s -> %s", before.value, state.phase.value)
                if action.kind == ActionKind.wait:
                    break
                self._carry_out(action)
            self._read_signal()
            return action

    def _read_link(self) -> LinkInfo:
        try:
            link = self.nmcli.link()
        except NmcliError as err:
            self._failed(str(err))
            link = LinkInfo(connected=False)
        with self._lock:
            self._link = link
        return link

    def _read_signal(self) -> None:
        link = self._link
        signal = None
        if link.connected and link.mode != "ap":
            signal = self.nmcli.signal()
        with self._lock:
            self._signal = signal

    def _carry_out(self, action: Action) -> None:
        what = action.kind.value + (f" {action.ssid}" if action.ssid else "")
        log.info("network: %s (%s)", what, action.reason)
        with self._lock:
            self.actions += 1
            self._last_action, self._last_action_at = what[:80], self.wall()
        try:
            self._do(action)
        except NmcliError as err:
            log.warning("network: %s failed: %s", what, err)
            self._failed(f"{what}: {err}")

    def _do(self, action: Action) -> None:
        ssid = action.ssid or ""
        ap_psk = self.secrets.ap_psk.get_secret_value() if self.secrets else None
        if action.kind == ActionKind.scan:
            entries = self.nmcli.scan()
            with self._lock:
                self._seen = tuple(Seen(e.ssid, e.signal) for e in entries)
                self._seen_at = self.clock()
        elif action.kind == ActionKind.join_mesh:
            self.nmcli.join(ssid, self.secrets.passphrase(ssid) if self.secrets else None)
        elif action.kind == ActionKind.join_ap:
            self.nmcli.join(ssid, ap_psk, name=CLIENT_CONNECTION)
        elif action.kind == ActionKind.raise_ap:
            if ap_psk is None:
                raise NmcliError("no ap_psk in network.secrets_file: the AP is not raised")
            self.nmcli.host(ssid, ap_psk)
        elif action.kind == ActionKind.leave_ap:
            self.nmcli.down()
            with self._lock:  # the scan the probe waits for is one taken after this
                self._seen_at = None

    def _failed(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self._last_error, self._last_error_at = message[:300], self.wall()

    # -- what the status shows --------------------------------------------------------------

    def _utc(self, wall: float | None) -> datetime | None:
        return datetime.fromtimestamp(wall, UTC) if wall is not None else None

    def status(self) -> NetworkManagerStatus:
        """The manager's state now (a snapshot; never waits on nmcli)."""
        with self._lock:
            st = self.state
            since = None
            if st.since is not None:
                since = self._utc(self.wall() - (self.clock() - st.since))
            target = self._link.ssid if self._link.connected else st.tried
            return NetworkManagerStatus(
                phase=ManagerPhase(st.phase.value),
                since=since,
                target=target[:32] if target else None,
                last_action=self._last_action,
                last_action_at=self._utc(self._last_action_at),
                last_error=self._last_error,
                last_error_at=self._utc(self._last_error_at),
                actions=self.actions,
                errors=self.errors,
            )

    def overlay(self, read: NetworkStatus) -> NetworkStatus:
        """The reader's status with the Wi-Fi link the manager sees: its mode (mesh,
        ap_host, ap_client, wifi) when it has one, SSID, signal, address, and its state."""
        with self._lock:
            link, signal = self._link, self._signal
        manager = self.status()
        if not link.connected:
            return replace_status(read, manager=manager)
        kind = classify(Link(link.ssid, link.mode == "ap", link.address), self.cfg)
        mode = MODE_OF_LINK.get(kind, read.mode)
        return replace_status(
            read,
            mode=mode,
            interface=self.settings.interface,
            ap=read.ap or mode == NetworkMode.ap_host,
            ssid=(link.ssid or "")[:32] or None,
            signal=signal,
            address=link.address if link.address and _address_ok(link.address) else None,
            manager=manager,
        )


def replace_status(status: NetworkStatus, **changes: object) -> NetworkStatus:
    """``status`` with ``changes`` (validated)."""
    return NetworkStatus.model_validate({**status.model_dump(), **changes})


def _address_ok(address: str) -> bool:
    return re.match(ADDRESS_PATTERN, address) is not None
