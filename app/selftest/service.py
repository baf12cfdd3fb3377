"""Run the self-test on every node at once."""

from __future__ import annotations

from app.context import Fleet
from app.fleet.wire import SelfTestRequest
from app.nodes import service as node_service
from app.selftest.models import FleetSelfTest, FleetSelfTestRequest, SelfTestNode

# On top of the clip: arming, decoding, hashing and the disk write test.
SELFTEST_MARGIN_S = 30.0


async def run(fleet: Fleet, body: FleetSelfTestRequest) -> FleetSelfTest:
    """A clip on every node (or ``node_ids``); one result per node."""
    nodes = await fleet.store.run(lambda db: node_service.addresses(db, fleet, body.node_ids))
    req = SelfTestRequest(duration_s=body.duration_s)
    timeout = body.duration_s + SELFTEST_MARGIN_S
    calls = await fleet.fanout.each(
        nodes, "selftest", lambda a: fleet.client.selftest(a, req, timeout), deadline_s=timeout
    )
    results = [
        SelfTestNode(
            node_id=c.node_id,
            ok=c.ok,
            status_code=c.status_code,
            error=c.error,
            latency_ms=c.latency_ms,
            result=c.value,
        )
        for c in calls
    ]
    passed = bool(results) and all(r.result is not None and r.result.passed for r in results)
    return FleetSelfTest(passed=passed, nodes=results)
