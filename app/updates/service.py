"""The fleet update: one node at a time, never a recording node, stop at the first failure.

Each node does its own update (``node_agent/updater``: download, verify, install beside
the old version, switch, restart, health check, roll back); the coordinator only picks
the order and the version, asks, and waits for the node's verdict. The target version is
fixed once (the request's, or the newest the first node's feed offers) so that the whole
rig ends up on one version. A node that records is skipped, never interrupted; a node
that fails (refused, unreachable, rolled back, no verdict in time) stops the run, and
the nodes after it are left as they were, so one bad release reaches one camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.errors import CamfleetError
from app.fleet.client import NodeAddress
from app.fleet.wire import RecorderState, UpdateApplyRequest, UpdateProgress, UpdateState
from app.nodes import service as node_service
from app.updates.models import (
    FleetUpdateRequest,
    FleetUpdateRun,
    NodeOutcome,
    NodeUpdateResult,
)

if TYPE_CHECKING:
    from app.context import Fleet

log = logging.getLogger(__name__)

# The node's verdicts; idle is not one (a status read before its update task began).
FINAL = {UpdateState.done, UpdateState.failed, UpdateState.rolled_back}


class UpdateRunning(CamfleetError):
    """A fleet update is already under way."""

    status_code = 409
    code = "update_running"


class NoUpdateRun(CamfleetError):
    """No fleet update has run since the coordinator started."""

    status_code = 404
    code = "no_update_run"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class FleetUpdater:
    """Holds the run under way (or the last one) and its task."""

    def __init__(self, fleet: Fleet, poll_s: float = 1.0) -> None:
        self.fleet = fleet
        self.poll_s = poll_s
        self.run: FleetUpdateRun | None = None
        self._task: asyncio.Task[None] | None = None

    async def begin(self, body: FleetUpdateRequest) -> FleetUpdateRun:
        """Start a run in the background and return it as it starts."""
        if self.run is not None and self.run.state == "running":
            raise UpdateRunning(
                f"fleet update {self.run.id} is still running; GET /api/v1/fleet/update "
                "shows its progress"
            )
        fleet = self.fleet
        targets = await fleet.store.run(lambda db: node_service.addresses(db, fleet, body.node_ids))
        if body.node_ids is None:
            cams = {n.node_id: n.cam_id for n in fleet.nodes.values()}
            targets.sort(key=lambda a: (cams.get(a.node_id, ""), a.node_id))
        self.run = FleetUpdateRun(
            id=secrets.token_hex(6),
            state="running",
            target=body.version,
            started_at=_now(),
            nodes=[NodeUpdateResult(node_id=a.node_id) for a in targets],
        )
        self._task = asyncio.create_task(self._run(self.run, targets), name="fleet-update")
        return self.run.model_copy(deep=True)

    def current(self) -> FleetUpdateRun:
        if self.run is None:
            raise NoUpdateRun("no fleet update has run yet; POST /api/v1/fleet/update starts one")
        return self.run.model_copy(deep=True)

    async def wait(self) -> None:
        """Until the run under way has finished (tests, shutdown)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, run: FleetUpdateRun, targets: list[NodeAddress]) -> None:
        try:
            for addr, result in zip(targets, run.nodes, strict=True):
                result.outcome, result.started_at = NodeOutcome.updating, _now()
                await self._one(run, addr, result)
                result.finished_at = _now()
                log.info(
                    "fleet update %s: %s %s (%s)",
                    run.id,
                    addr.node_id,
                    result.outcome,
                    result.detail or result.version,
                )
                if result.outcome is NodeOutcome.failed:
                    run.stopped_at = addr.node_id
                    break
        except Exception as err:  # a bug here must still end the run, not leave it running
            log.exception("fleet update %s stopped", run.id)
            for result in run.nodes:
                if result.outcome is NodeOutcome.updating:
                    result.outcome, result.detail = NodeOutcome.failed, f"coordinator: {err}"
        finally:
            for result in run.nodes:
                if result.outcome is NodeOutcome.waiting:
                    result.outcome = NodeOutcome.not_started
            failed = any(r.outcome is NodeOutcome.failed for r in run.nodes)
            run.state = "failed" if failed else "done"
            run.finished_at = _now()

    async def _one(self, run: FleetUpdateRun, addr: NodeAddress, result: NodeUpdateResult) -> None:
        client, deadline_s = self.fleet.client, self.fleet.settings.update_node_timeout_s

        def fail(why: str) -> None:
            result.outcome, result.detail = NodeOutcome.failed, why[:500]

        status = await client.status(addr)
        if not status.ok or status.value is None:
            return fail(f"unreachable before the update: {status.error}")
        if status.value.recorder.state is not RecorderState.idle:
            result.outcome = NodeOutcome.skipped
            result.detail = f"recording ({status.value.recorder.state}): never updated mid-take"
            result.from_version = result.version = status.value.version
            return None
        check = await client.update_check(addr)
        if not check.ok or check.value is None:
            return fail(f"could not check for updates: {check.error}")
        result.from_version = result.version = check.value.current
        if check.value.error:
            return fail(f"could not read its release feed: {check.value.error}")
        if run.target is None:
            if check.value.available is None or not check.value.update_available:
                result.outcome = NodeOutcome.up_to_date
                result.detail = "no newer release in the feed"
                return None
            run.target = check.value.available
        if check.value.current == run.target:
            result.outcome = NodeOutcome.up_to_date
            return None
        applied = await client.update_apply(addr, UpdateApplyRequest(version=run.target))
        if not applied.ok:
            if applied.status_code == 409 and "record" in (applied.error or ""):
                result.outcome, result.detail = NodeOutcome.skipped, applied.error
                return None
            return fail(f"refused the update: {applied.error}")
        end = time.monotonic() + deadline_s
        last: UpdateProgress | None = applied.value
        unreachable = None
        while time.monotonic() < end:
            await asyncio.sleep(self.poll_s)
            seen = await client.update_status(addr)  # unreachable while it restarts
            if not seen.ok or seen.value is None:
                unreachable = seen.error
                continue
            last = seen.value
            if last.state in FINAL and not last.queued:
                break
        else:
            state = last.state if last else "unknown"
            return fail(
                f"no verdict within {deadline_s:g} s (last state {state}"
                + (f", then unreachable: {unreachable}" if unreachable else "")
                + ")"
            )
        result.version = last.current
        if last.state is UpdateState.done and last.current == run.target:
            result.outcome, result.detail = NodeOutcome.updated, last.detail
            return None
        return fail(f"{last.state}: {last.detail or 'no reason given'} (runs {last.current})")
