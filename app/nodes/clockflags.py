"""Clock flags per node, from the cached statuses of the whole fleet.

- "not following the master": a client whose chrony does not follow the fleet's master.
  The master is the node whose status says ``role: master``; the coordinator knows its
  TCP peer address. A client follows it when chrony is synchronised, its selected source
  (or reference) is that address, and the agent itself found the source to be its
  configured master (``follows_master``; on loopback every node is 127.0.0.1, so the
  address alone proves nothing there).
- "clock bound X ms exceeds one frame period Y ms": frames from that camera cannot be
  matched to the others' frame for frame.
"""

from __future__ import annotations

from app.fleet.wire import NodeStatus
from app.nodes.models import NodePublic


def host_of(address: str) -> str:
    """``10.42.0.3:8081`` -> ``10.42.0.3`` (``[::1]:8081`` -> ``::1``)."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host.strip("[]")


def master_host(nodes: list[NodePublic]) -> str | None:
    """The TCP address of the node that reports the master role, if exactly one does."""
    masters = [n for n in nodes if n.status is not None and n.status.clock.role == "master"]
    return host_of(masters[0].address) if len(masters) == 1 else None


def follow_flag(status: NodeStatus, master: str | None) -> str | None:
    """Why a client does not follow the master, or None when it does (or is no client)."""
    c = status.clock
    if c.role != "client":
        return None
    source = c.selected_source or (c.reference if c.synchronized else None)
    expected = master or c.master or "unknown"
    problems = []
    if not c.synchronized:
        problems.append("unsynchronized")
    if master is not None and source is not None and source != master:
        problems.append(f"the master node is at {master}")
    if c.follows_master is False and c.synchronized:
        problems.append(f"its configured master is {c.master}")
    if not problems:
        return None
    return (
        f"not following the master: chrony's source is {source or 'none'} "
        f"(expected {expected}; {', '.join(problems)})"
    )


def frame_flag(status: NodeStatus) -> str | None:
    """The clock's bound is more than one frame period at the recorder's frame rate."""
    bound, fps = status.clock.error_bound_ns, status.recorder.fps
    if bound is None or fps <= 0:
        return None
    period_ms = 1000.0 / fps
    if bound / 1e6 <= period_ms:
        return None
    return f"clock bound {bound / 1e6:.1f} ms exceeds one frame period {period_ms:.1f} ms"


def with_clock_flags(nodes: list[NodePublic]) -> list[NodePublic]:
    """Each node with its ``clock_flags`` filled in (judged against the whole fleet)."""
    master = master_host(nodes)
    out = []
    for node in nodes:
        if node.status is None:
            out.append(node)
            continue
        flags = [f for f in (follow_flag(node.status, master), frame_flag(node.status)) if f]
        out.append(node.model_copy(update={"clock_flags": flags}))
    return out
