"""Clock telemetry from chrony: ``parse_tracking`` (pure) and ``ClockMonitor`` (runs chronyc)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from node_agent.schemas import ClockStatus
from node_agent.telemetry.reading import Reading

log = logging.getLogger(__name__)

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


class TrackingParseError(ValueError):
    """chronyc printed something that is not a tracking report."""


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

    @property
    def synchronized(self) -> bool:
        """True when chrony has a reference and considers the clock synchronised."""
        # A node serving its own clock ("local stratum N", ref id 7F7F0101 = LOCAL) is the
        # rig's reference, so it counts as synchronised; "no reference" (00000000) does not.
        return (
            self.leap_status != "Not synchronised"
            and 0 < self.stratum < 16
            and self.ref_id != "00000000"
        )

    @property
    def offset_ns(self) -> int:
        """Local clock minus reference time, in ns (positive = this clock is ahead)."""
        return round(-self.correction_s * 1e9)


def parse_tracking(text: str) -> ChronyTracking:
    """Parse the CSV line of ``chronyc -c tracking``."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    parts = line.split(",")
    if len(parts) != len(TRACKING_FIELDS):
        raise TrackingParseError(
            f"expected {len(TRACKING_FIELDS)} comma-separated fields, got {len(parts)}: {line!r}"
        )
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
        )
    except ValueError as err:
        raise TrackingParseError(f"a numeric field is not a number in {line!r}: {err}") from err


def status_from_tracking(tracking: ChronyTracking, read_at_ns: int) -> ClockStatus:
    """The wire form of a tracking report."""
    return ClockStatus(
        source="chrony",
        synchronized=tracking.synchronized,
        offset_ns=tracking.offset_ns,
        stratum=tracking.stratum,
        reference=tracking.ref_name or tracking.ref_id,
        read_at_ns=read_at_ns,
    )


class ClockMonitor:
    """Polls ``chronyc -c tracking`` and keeps the latest reading; never raises."""

    def __init__(
        self, chronyc: str = "chronyc", interval_s: float = 5.0, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.chronyc = chronyc
        self.interval_s = interval_s
        self.extra_args = extra_args
        self.latest = ClockStatus(source="none", synchronized=False, error="not read yet")
        self.ok = False
        self._task: asyncio.Task[None] | None = None

    def reading(self) -> Reading[ClockStatus]:
        """The latest status as a collector result: ok when the last chronyc run succeeded."""
        return Reading("clock", self.latest, None if self.ok else self.latest.error or "failed")

    async def read_once(self) -> ClockStatus:
        """Run chronyc once and update ``latest``; failures become data, not exceptions."""
        now_ns = time.time_ns()
        try:
            proc = await asyncio.create_subprocess_exec(
                self.chronyc,
                *self.extra_args,
                "-c",
                "-n",
                "tracking",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=3.0)
            if proc.returncode != 0:
                raise RuntimeError(
                    err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
                )
            status = status_from_tracking(parse_tracking(out.decode()), now_ns)
            self.ok = True
        except FileNotFoundError:
            status = ClockStatus(
                source="none",
                synchronized=False,
                error=f"{self.chronyc} not found",
                read_at_ns=now_ns,
            )
            self.ok = False
        except (OSError, RuntimeError, TimeoutError, TrackingParseError) as err:
            status = ClockStatus(
                source="none", synchronized=False, error=f"chronyc: {err}", read_at_ns=now_ns
            )
            self.ok = False
        self.latest = status
        return status

    async def _run(self) -> None:
        while True:
            await self.read_once()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Begin polling in the background."""
        self._task = asyncio.create_task(self._run(), name="clock-monitor")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
