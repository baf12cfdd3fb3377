"""What benchmark 6 measured: sizes, one series per client, results per size."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.client_adapters import (
    RAW,
)
from bench.common import (
    median,
    percentile,
)


@dataclass(frozen=True)
class Size:
    """One fleet size and what serves it."""

    n: int
    standin: bool
    tune: bool = False  # also run the connector-tuning rounds at this size


@dataclass
class Series:
    """The measured rounds of one client on one call at one size."""

    client: str
    setting: str
    times_s: list[float] = field(default_factory=list)
    timed_out: bool = False
    budget_hit: bool = False
    error: str | None = None  # why the client stopped early at this size, if it failed

    @property
    def rounds(self) -> int:
        return len(self.times_s)

    def median_ms(self) -> float:
        return median(self.times_s) * 1e3

    def p90_ms(self) -> float:
        return percentile(self.times_s, 90) * 1e3


@dataclass
class SizeResult:
    """Every series at one size: status, start and (maybe) the tuning rounds."""

    n: int
    standin: bool
    hosts: int
    status: dict[str, Series] = field(default_factory=dict)
    start: dict[str, Series] = field(default_factory=dict)
    tuning: dict[str, Series] = field(default_factory=dict)
    rss_idle_mb: float | None = None  # sum over the host processes
    rss_armed_mb: float | None = None
    error: str | None = None  # the size could not be measured to the end

    def ratio(self, call: str, client: str, against: str = RAW) -> float:
        table = self.status if call == "status" else self.start
        a, b = table.get(client), table.get(against)
        if a is None or b is None or not a.times_s or not b.times_s:
            return float("nan")
        return median(a.times_s) / median(b.times_s)

    def tuning_ratio(self, variant: str) -> float:
        raw = self.status.get(RAW)
        s = self.tuning.get(variant)
        if raw is None or s is None or not s.times_s or not raw.times_s:
            return float("nan")
        return median(s.times_s) / median(raw.times_s)


@dataclass
class ClientsResult:
    """The whole benchmark: one entry per size, and the bodies the stand-ins served."""

    sizes: list[SizeResult]
    status_rounds: int
    start_rounds: int
    budget_s: float
    real_max: int
