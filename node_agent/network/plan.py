"""Mesh join and access-point fallback as a pure state machine: ``step(state, seen, cfg)``.

No I/O and no clock: the service passes in what the radio sees, what link is up and the
monotonic time, and carries out the one action the step returns.

The behaviour (soccer-rig plan, Phase 7):

- **seeking** (boot, or the link was lost): join a configured mesh or infrastructure
  network that a scan shows. After ``join_timeout_s`` without one, the master raises its
  access point (``SOCCER_CAM_C``). A non-master joins the master's AP once it has tried
  the networks for ``join_timeout_s`` (at once when it is seeking again after losing a
  link: the AP it sees exists); after ``client_timeout_s`` with neither a network nor the
  master's AP it raises its own AP, so a phone can still reach it.
- **ap_client**: on the master's AP; every ``mesh_retry_s`` it scans (a client radio can)
  and joins a configured network that came back. Losing the AP is seeking again.
- **ap_host**: hosting an AP; every ``mesh_retry_s`` it takes the AP down for one scan
  (**probing**: NetworkManager does not scan a radio in AP mode), joins a network that is
  back, or, not the master, the master's AP; else it raises its AP again, within
  ``probe_timeout_s``.
- **mesh**: on a configured network; losing it is seeking again.

A step returns one action; the service steps again at once after anything but ``wait``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Phase(StrEnum):
    """What the manager is doing."""

    seeking = "seeking"  # trying the configured networks (then the fallback)
    mesh = "mesh"  # on a configured network
    ap_host = "ap_host"  # hosting this node's access point
    ap_client = "ap_client"  # on the master's access point
    probing = "probing"  # a hosting node took its AP down to look for the mesh


class ActionKind(StrEnum):
    """What the service is asked to do."""

    wait = "wait"
    scan = "scan"
    join_mesh = "join"  # a configured mesh / infrastructure network
    raise_ap = "raise_ap"  # host this node's access point
    join_ap = "join_ap"  # join the master's access point
    leave_ap = "leave_ap"  # take this node's access point down


class LinkKind(StrEnum):
    """What the Wi-Fi link is, as the plan sees it."""

    down = "down"
    mesh = "mesh"
    ap_host = "ap_host"
    ap_client = "ap_client"
    other = "other"  # a network the settings do not name (treated as no link)


@dataclass(frozen=True)
class Seen:
    """One network a scan showed."""

    ssid: str
    signal: int = 0  # 0-100, as nmcli reports it


@dataclass(frozen=True)
class Link:
    """The Wi-Fi device's active connection."""

    ssid: str | None = None
    hosting: bool = False  # the active connection is an access point this node hosts
    address: str | None = None


@dataclass(frozen=True)
class Observation:
    """What the service saw before this step."""

    now: float  # monotonic seconds
    link: Link = Link()
    seen: tuple[Seen, ...] = ()
    seen_at: float | None = None  # when ``seen`` was scanned (None: never)


@dataclass(frozen=True)
class PlanConfig:
    """The parts of the settings the plan needs."""

    networks: tuple[str, ...]  # best first
    own_ap: str
    master_ap: str
    is_master: bool
    join_timeout_s: float = 30.0
    client_timeout_s: float = 60.0
    mesh_retry_s: float = 120.0
    probe_timeout_s: float = 15.0

    @property
    def gap_s(self) -> float:
        """How stale a scan may be, and how soon a failed join is tried again."""
        return min(self.join_timeout_s / 3, 10.0)


@dataclass(frozen=True)
class Action:
    """The one thing to do now."""

    kind: ActionKind
    ssid: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class PlanState:
    """What the plan remembers between steps."""

    phase: Phase = Phase.seeking
    since: float | None = None  # when the phase began (None: before the first step)
    boot: bool = True  # seeking since boot (not after losing a link)
    tried: str | None = None  # the last SSID a join or raise was asked for
    tried_at: float | None = None
    last_look: float | None = None  # the last mesh retry (a scan or a probe)


def classify(link: Link, cfg: PlanConfig) -> LinkKind:
    """What ``link`` is for the plan."""
    if link.ssid is None:
        return LinkKind.down
    if link.hosting:
        return LinkKind.ap_host if link.ssid == cfg.own_ap else LinkKind.other
    if link.ssid in cfg.networks:
        return LinkKind.mesh
    if link.ssid == cfg.master_ap and not cfg.is_master:
        return LinkKind.ap_client
    return LinkKind.other


def step(state: PlanState, obs: Observation, cfg: PlanConfig) -> tuple[PlanState, Action]:
    """The next state and action for what was observed."""
    now = obs.now
    if state.since is None:
        state = replace(state, since=now)
    kind = classify(obs.link, cfg)
    adopted = _adopt(state, kind, now)
    if adopted is not None:
        return adopted
    if state.phase == Phase.mesh:
        if kind == LinkKind.mesh:
            return state, Action(ActionKind.wait, reason=f"on {obs.link.ssid}")
        state = _enter(state, Phase.seeking, now, boot=False)  # the mesh went away
    if state.phase == Phase.ap_client and kind != LinkKind.ap_client:
        state = _enter(state, Phase.seeking, now, boot=False)
    if state.phase == Phase.seeking:
        return _seek(state, obs, cfg)
    if state.phase == Phase.ap_client:
        return _client(state, obs, cfg)
    if state.phase == Phase.probing:
        return _probe(state, obs, cfg)
    return _host(state, obs, cfg, kind)


def _enter(state: PlanState, phase: Phase, now: float, *, boot: bool | None = None) -> PlanState:
    return replace(
        state,
        phase=phase,
        since=now,
        boot=state.boot if boot is None else boot,
        last_look=now if phase in (Phase.ap_host, Phase.ap_client) else state.last_look,
    )


def _adopt(state: PlanState, kind: LinkKind, now: float) -> tuple[PlanState, Action] | None:
    """A link that is up says which phase we are in (a join that worked, an AP kept
    across a restart of the agent)."""
    want = {
        LinkKind.mesh: Phase.mesh,
        LinkKind.ap_host: Phase.ap_host,
        LinkKind.ap_client: Phase.ap_client,
    }.get(kind)
    if want is None or state.phase == want:
        return None
    if want == Phase.ap_host and state.phase == Phase.probing:
        return None  # the AP is still going down; the probe carries on
    new = _enter(state, want, now, boot=False)
    return new, Action(ActionKind.wait, reason=f"{want.value} is up")


def _visible(obs: Observation, ssid: str) -> bool:
    return any(s.ssid == ssid for s in obs.seen)


def _fresh(obs: Observation, after: float | None, cfg: PlanConfig) -> bool:
    """A scan taken after ``after`` (and not older than the gap)."""
    if obs.seen_at is None:
        return False
    if after is not None and obs.seen_at < after:
        return False
    return obs.now - obs.seen_at < cfg.gap_s


def _tried_since(state: PlanState, ssid: str, t: float) -> bool:
    """``ssid`` was the last thing tried, after ``t``."""
    return state.tried == ssid and state.tried_at is not None and state.tried_at >= t


def _candidate(state: PlanState, obs: Observation, cfg: PlanConfig) -> str | None:
    """The best configured network the scan shows that was not just tried."""
    signal = {s.ssid: s.signal for s in obs.seen}
    for ssid in cfg.networks:  # the settings' order decides (best first), not the signal
        if ssid not in signal:
            continue
        if _tried_since(state, ssid, obs.now - cfg.gap_s):
            continue
        return ssid
    return None


def _try(
    state: PlanState, obs: Observation, kind: ActionKind, ssid: str, reason: str
) -> tuple[PlanState, Action]:
    return replace(state, tried=ssid, tried_at=obs.now), Action(kind, ssid, reason)


def _raise(
    state: PlanState, obs: Observation, cfg: PlanConfig, reason: str
) -> tuple[PlanState, Action]:
    new = _enter(state, Phase.ap_host, obs.now)
    return _try(new, obs, ActionKind.raise_ap, cfg.own_ap, reason)


def _scan_or_wait(
    state: PlanState, obs: Observation, cfg: PlanConfig, reason: str
) -> tuple[PlanState, Action]:
    if _fresh(obs, None, cfg):
        return state, Action(ActionKind.wait, reason=reason)
    return state, Action(ActionKind.scan, reason=reason)


def _seek(state: PlanState, obs: Observation, cfg: PlanConfig) -> tuple[PlanState, Action]:
    assert state.since is not None
    elapsed = obs.now - state.since
    fresh = _fresh(obs, None, cfg)
    mesh = _candidate(state, obs, cfg) if fresh else None
    if cfg.is_master:
        if elapsed >= cfg.join_timeout_s:
            return _raise(state, obs, cfg, f"no network in {cfg.join_timeout_s:g} s")
        if mesh is not None:
            return _try(state, obs, ActionKind.join_mesh, mesh, "a configured network is in range")
        return _scan_or_wait(state, obs, cfg, "looking for a configured network")
    ap_ok = (
        fresh
        and _visible(obs, cfg.master_ap)
        and (not state.boot or elapsed >= cfg.join_timeout_s)
        and not _tried_since(state, cfg.master_ap, obs.now - cfg.gap_s)
    )
    if mesh is not None and elapsed < cfg.join_timeout_s:
        return _try(state, obs, ActionKind.join_mesh, mesh, "a configured network is in range")
    if ap_ok:
        return _try(state, obs, ActionKind.join_ap, cfg.master_ap, "the master's AP is in range")
    if elapsed >= cfg.client_timeout_s:
        return _raise(
            state, obs, cfg, f"neither a network nor {cfg.master_ap} in {cfg.client_timeout_s:g} s"
        )
    if mesh is not None:
        return _try(state, obs, ActionKind.join_mesh, mesh, "a configured network is in range")
    return _scan_or_wait(state, obs, cfg, f"looking for a configured network or {cfg.master_ap}")


def _client(state: PlanState, obs: Observation, cfg: PlanConfig) -> tuple[PlanState, Action]:
    if not cfg.networks:
        return state, Action(ActionKind.wait, reason=f"on {cfg.master_ap}")
    look = state.last_look if state.last_look is not None else obs.now
    if obs.now - look >= cfg.mesh_retry_s:
        return replace(state, last_look=obs.now), Action(
            ActionKind.scan, reason="looking for the mesh again"
        )
    mesh = _candidate(state, obs, cfg) if _fresh(obs, state.last_look, cfg) else None
    if mesh is not None:
        return _try(state, obs, ActionKind.join_mesh, mesh, "the mesh is back")
    return state, Action(ActionKind.wait, reason=f"on {cfg.master_ap}")


def _host(
    state: PlanState, obs: Observation, cfg: PlanConfig, kind: LinkKind
) -> tuple[PlanState, Action]:
    if kind != LinkKind.ap_host:  # the raise failed or the AP dropped: raise it again
        if state.tried_at is not None and obs.now - state.tried_at < cfg.gap_s:
            return state, Action(ActionKind.wait, reason=f"waiting to raise {cfg.own_ap} again")
        return _try(state, obs, ActionKind.raise_ap, cfg.own_ap, f"{cfg.own_ap} is not up")
    look = state.last_look if state.last_look is not None else obs.now
    something_to_find = bool(cfg.networks) or not cfg.is_master
    if something_to_find and obs.now - look >= cfg.mesh_retry_s:
        new = replace(_enter(state, Phase.probing, obs.now), last_look=obs.now)
        return new, Action(ActionKind.leave_ap, cfg.own_ap, "looking for the mesh again")
    return state, Action(ActionKind.wait, reason=f"hosting {cfg.own_ap}")


def _probe(state: PlanState, obs: Observation, cfg: PlanConfig) -> tuple[PlanState, Action]:
    assert state.since is not None
    if obs.now - state.since >= cfg.probe_timeout_s:
        return _raise(state, obs, cfg, "the probe took too long")
    if not _fresh(obs, state.since, cfg):
        return state, Action(ActionKind.scan, reason="looking for the mesh again")
    mesh = _candidate(state, obs, cfg)
    if mesh is not None and not _tried_since(state, mesh, state.since):
        return _try(state, obs, ActionKind.join_mesh, mesh, "the mesh is back")
    if (
        not cfg.is_master
        and _visible(obs, cfg.master_ap)
        and not _tried_since(state, cfg.master_ap, state.since)
    ):
        return _try(state, obs, ActionKind.join_ap, cfg.master_ap, "the master's AP is in range")
    return _raise(state, obs, cfg, "nothing better in range")
