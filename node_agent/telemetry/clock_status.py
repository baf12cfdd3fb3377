"""A chrony report as the wire's ClockStatus: the error bound, "synchronized", the role.

"synchronized" is decided here, not left to chrony's leap status alone: chronyd keeps
"Normal" in ``tracking`` for as long as it likes after its source went away (measured on
chrony 4.3: the master killed, the client's tracking stayed "Normal" for minutes while
its only source turned unreachable at once). So a node counts as synchronised when
chrony says so *and* either it serves its own clock (``local stratum``, the master with
no upstream) or one of its sources is the selected one and is reachable. A source list
that is empty (chronyc gave none) leaves chrony's word standing. The error bound grows
with the root dispersion meanwhile, so the gate's limit catches a clock left coasting
even while its source still answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.schemas import ChronySource, ClockStatus
from node_agent.telemetry.chrony_parse import ChronyReport


@dataclass(frozen=True)
class ClockRole:
    """This node's place in the fleet's clock (from ``sync:``)."""

    role: str | None = None  # master, client or none; None: not told (a bare monitor)
    master: str | None = None  # the master a client follows (host, as configured)
    master_addresses: frozenset[str] = frozenset()  # what that host resolves to


def error_bound_ns(offset_ns: int, root_dispersion_ns: int, root_delay_ns: int) -> int:
    """|offset| + root dispersion + root delay / 2: how far this clock may be from the
    fleet's reference (chrony's own maximum-error estimate plus what is not yet slewed)."""
    return abs(offset_ns) + root_dispersion_ns + root_delay_ns // 2


def selected(sources: list[ChronySource]) -> ChronySource | None:
    """The source chrony synchronises to, if any."""
    return next((s for s in sources if s.state == "selected"), None)


def is_synchronized(report: ChronyReport) -> bool:
    """chrony's word, checked against the source list (see the module docstring)."""
    t = report.tracking
    if not t.synchronized:
        return False
    if t.local or not report.sources:
        return True
    chosen = selected(report.sources)
    return chosen is not None and chosen.reach != 0


def follows_master(report: ChronyReport, role: ClockRole) -> bool | None:
    """A client's selected source (or reference) is its master; None off the client role."""
    if role.role != "client":
        return None
    names = {role.master, *role.master_addresses} - {None}
    if report.sources:
        chosen = selected(report.sources)
        return chosen is not None and chosen.reach != 0 and chosen.address in names
    t = report.tracking
    return t.synchronized and not t.local and (t.ref_name in names or t.ref_id in names)


def status_from_report(report: ChronyReport, read_at_ns: int, role: ClockRole) -> ClockStatus:
    """Every ClockStatus field from one chronyc report."""
    t = report.tracking
    offset = t.offset_ns
    delay = round(t.root_delay_s * 1e9)
    dispersion = round(t.root_dispersion_s * 1e9)
    chosen = selected(report.sources)
    age = read_at_ns / 1e9 - t.ref_time_s if t.ref_time_s > 0 else None
    return ClockStatus(
        source="chrony",
        synchronized=is_synchronized(report),
        offset_ns=offset,
        stratum=t.stratum,
        reference=t.ref_name or ("LOCAL" if t.local else t.ref_id),
        read_at_ns=read_at_ns,
        error_bound_ns=error_bound_ns(offset, dispersion, delay),
        offset_error_ns=dispersion + delay // 2,
        rms_offset_ns=round(t.rms_offset_s * 1e9),
        frequency_ppm=t.frequency_ppm,
        skew_ppm=t.skew_ppm,
        root_delay_ns=delay,
        root_dispersion_ns=dispersion,
        leap_status=t.leap_status,
        reference_id=t.ref_id,
        selected_source=chosen.address if chosen else None,
        last_update_age_s=None if age is None else round(max(age, 0.0), 3),
        role=role.role,
        master=role.master,
        follows_master=follows_master(report, role),
        sources=report.sources,
    )


def status_unread(error: str, read_at_ns: int | None, role: ClockRole) -> ClockStatus:
    """chronyc did not answer: unsynchronised, with the reason."""
    return ClockStatus(
        source="none",
        synchronized=False,
        error=error,
        read_at_ns=read_at_ns,
        role=role.role,
        master=role.master,
        follows_master=False if role.role == "client" else None,
    )
