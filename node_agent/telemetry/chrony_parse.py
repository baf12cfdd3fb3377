"""Pure parsers of chronyc's CSV output (``chronyc -c -n tracking | sources | sourcestats``).

The field lists follow chronyc(1). Every number chrony prints in seconds is kept in
seconds here; ``node_agent.telemetry.clock_status`` turns them into the wire's ns.
"""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.schemas import ChronySource

# Fields of `chronyc -c tracking`, in order (chronyc(1), "tracking").
TRACKING_FIELDS = (
    "ref_id",
    "ref_name",
    "stratum",
    "ref_time",
    "system_time",
    "last_offset",
    "rms_offset",
    "frequency_ppm",
    "residual_freq_ppm",
    "skew_ppm",
    "root_delay",
    "root_dispersion",
    "update_interval",
    "leap_status",
)
# `chronyc -c sources`: mode, state, name, stratum, poll, reach (octal), last rx (s),
# adjusted offset, measured offset, error (s).
SOURCES_FIELDS = 10
# `chronyc -c sourcestats`: name, samples, runs, span, frequency, freq skew, offset, std dev.
SOURCESTATS_FIELDS = 8

LOCAL_REF_ID = "7F7F0101"  # "local stratum N": the node serves its own clock
NO_REF_ID = "00000000"
NEVER = 2**32 - 1  # what chronyc prints as "last rx" of a source never heard from

MODES = {"^": "server", "=": "peer", "#": "refclock"}
STATES = {
    "*": "selected",
    "+": "combined",
    "-": "not_combined",
    "?": "unreachable",
    "x": "falseticker",
    "~": "jittery",
}


class TrackingParseError(ValueError):
    """chronyc printed something that is not the report asked for."""


@dataclass(frozen=True)
class ChronyTracking:
    """One ``chronyc -c tracking`` report."""

    ref_id: str
    ref_name: str
    stratum: int
    ref_time_s: float
    correction_s: float  # chrony's "System time": positive means the clock is slow
    last_offset_s: float
    rms_offset_s: float
    frequency_ppm: float
    skew_ppm: float
    root_delay_s: float
    root_dispersion_s: float
    leap_status: str
    update_interval_s: float = 0.0

    @property
    def synchronized(self) -> bool:
        """True when chrony has a reference and considers the clock synchronised.

        This is chrony's own view: it keeps "Normal" long after the source went away
        (see ``clock_status.is_synchronized``, which also asks the source list)."""
        # A node serving its own clock ("local stratum N", ref id 7F7F0101 = LOCAL) is the
        # rig's reference, so it counts as synchronised; "no reference" (00000000) does not.
        return (
            self.leap_status != "Not synchronised"
            and 0 < self.stratum < 16
            and self.ref_id != NO_REF_ID
        )

    @property
    def local(self) -> bool:
        """The node follows its own clock (``local stratum``): it is the reference."""
        return self.ref_id == LOCAL_REF_ID

    @property
    def offset_ns(self) -> int:
        """Local clock minus reference time, in ns (positive = this clock is ahead)."""
        return round(-self.correction_s * 1e9)


def _fields(line: str, count: int, what: str) -> list[str]:
    parts = line.split(",")
    if len(parts) != count:
        raise TrackingParseError(
            f"expected {count} comma-separated fields in a {what} line, got {len(parts)}: {line!r}"
        )
    return parts


def parse_tracking(text: str) -> ChronyTracking:
    """Parse the CSV line of ``chronyc -c tracking``."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    parts = _fields(line, len(TRACKING_FIELDS), "tracking")
    f = dict(zip(TRACKING_FIELDS, parts, strict=True))
    try:
        return ChronyTracking(
            ref_id=f["ref_id"].upper(),
            ref_name=f["ref_name"],
            stratum=int(f["stratum"]),
            ref_time_s=float(f["ref_time"]),
            correction_s=float(f["system_time"]),
            last_offset_s=float(f["last_offset"]),
            rms_offset_s=float(f["rms_offset"]),
            frequency_ppm=float(f["frequency_ppm"]),
            skew_ppm=float(f["skew_ppm"]),
            root_delay_s=float(f["root_delay"]),
            root_dispersion_s=float(f["root_dispersion"]),
            leap_status=f["leap_status"].strip(),
            update_interval_s=float(f["update_interval"]),
        )
    except ValueError as err:
        raise TrackingParseError(f"a numeric field is not a number in {line!r}: {err}") from err


def _ns(seconds: str) -> int:
    return round(float(seconds) * 1e9)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_sources(text: str) -> list[ChronySource]:
    """Parse ``chronyc -c sources``: one ChronySource per line, statistics not yet joined."""
    out = []
    for line in _lines(text):
        p = _fields(line, SOURCES_FIELDS, "sources")
        try:
            last_rx = float(p[6])
            out.append(
                ChronySource(
                    address=p[2],
                    mode=MODES.get(p[0], "unknown"),
                    state=STATES.get(p[1], "unknown"),
                    stratum=int(p[3]),
                    poll_log2=int(p[4]),
                    reach=int(p[5], 8),
                    last_rx_s=None if last_rx >= NEVER else last_rx,
                    offset_ns=_ns(p[7]),
                    error_ns=_ns(p[9]),
                )
            )
        except ValueError as err:
            raise TrackingParseError(f"a field is not a number in {line!r}: {err}") from err
    return out


@dataclass(frozen=True)
class SourceStats:
    """One ``chronyc -c sourcestats`` line."""

    address: str
    samples: int
    runs: int
    span_s: float
    frequency_ppm: float
    skew_ppm: float
    offset_ns: int
    std_dev_ns: int


def parse_sourcestats(text: str) -> list[SourceStats]:
    """Parse ``chronyc -c sourcestats``."""
    out = []
    for line in _lines(text):
        p = _fields(line, SOURCESTATS_FIELDS, "sourcestats")
        try:
            out.append(
                SourceStats(
                    address=p[0],
                    samples=int(p[1]),
                    runs=int(p[2]),
                    span_s=float(p[3]),
                    frequency_ppm=float(p[4]),
                    skew_ppm=float(p[5]),
                    offset_ns=_ns(p[6]),
                    std_dev_ns=_ns(p[7]),
                )
            )
        except ValueError as err:
            raise TrackingParseError(f"a field is not a number in {line!r}: {err}") from err
    return out


def join_sources(sources: list[ChronySource], stats: list[SourceStats]) -> list[ChronySource]:
    """Each source with its statistics (matched by address), in chronyc's order."""
    by_address = {s.address: s for s in stats}
    joined = []
    for src in sources:
        st = by_address.get(src.address)
        if st is None:
            joined.append(src)
            continue
        joined.append(
            src.model_copy(
                update={
                    "samples": st.samples,
                    "frequency_ppm": st.frequency_ppm,
                    "skew_ppm": st.skew_ppm,
                    "std_dev_ns": st.std_dev_ns,
                }
            )
        )
    return joined


@dataclass(frozen=True)
class ChronyReport:
    """What one ``chronyc -c -n -m tracking sources sourcestats`` printed."""

    tracking: ChronyTracking
    sources: list[ChronySource]


def parse_report(text: str) -> ChronyReport:
    """Split the output of one ``-m`` call into its three reports and parse each.

    The three CSV reports have 14, 10 and 8 fields a line, so each line says which
    report it belongs to; the tracking line comes first."""
    lines = _lines(text)
    if not lines:
        raise TrackingParseError("chronyc printed nothing")
    tracking = parse_tracking(lines[0])
    rest = lines[1:]
    sources = [ln for ln in rest if ln.count(",") == SOURCES_FIELDS - 1]
    stats = [ln for ln in rest if ln.count(",") == SOURCESTATS_FIELDS - 1]
    other = [ln for ln in rest if ln not in sources and ln not in stats]
    if other:
        raise TrackingParseError(f"not a sources or sourcestats line: {other[0]!r}")
    return ChronyReport(
        tracking,
        join_sources(parse_sources("\n".join(sources)), parse_sourcestats("\n".join(stats))),
    )
