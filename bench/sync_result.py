"""What the sync benchmark measured: per node and trial, and the figures drawn from it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.common import median, percentile

MODES = ("now", "scheduled")


@dataclass(frozen=True)
class NodeTrial:
    """One node in one trial."""

    shift_ns: int  # the clock shift libfaketime gave this node: the truth
    first_frame_ns: int  # the manifest's, on the node's (shifted) clock
    offset_ns: int | None  # the manifest's clock_offset_ns (what the node believed)
    manifest_bound_ns: int | None  # the manifest's clock_error_bound_ns, when the agent has one
    synchronized: bool
    read_offset_ns: int | None  # the bench's own chronyc reading right after the trial
    read_bound_ns: int | None  # its |offset| + root dispersion + root delay / 2
    read_residual_ns: int | None  # its root dispersion + root delay / 2
    clock_warnings: int  # start warnings from the clock gate

    @property
    def fleet_ns(self) -> int:
        """First frame in fleet time, as the coordinator computes it (minus the offset)."""
        return self.first_frame_ns - (self.offset_ns or 0)

    @property
    def true_ns(self) -> int:
        """First frame on the master's clock: what really happened."""
        return self.first_frame_ns - self.shift_ns

    @property
    def offset_error_ns(self) -> int | None:
        """The reported offset's true error (reported - shift; the master is unshifted)."""
        return None if self.offset_ns is None else self.offset_ns - self.shift_ns

    @property
    def bound_ns(self) -> int | None:
        """The bound reported with the recording (the manifest's, else the bench's reading)."""
        return self.manifest_bound_ns if self.manifest_bound_ns is not None else self.read_bound_ns

    @property
    def bound_covers(self) -> bool | None:
        """The bound covers how far the clock really is from fleet time (|shift|)."""
        b = self.bound_ns
        return None if b is None else abs(self.shift_ns) <= b

    @property
    def residual_covers(self) -> bool | None:
        """The reading's dispersion + delay / 2 covers its offset's true error."""
        if self.read_offset_ns is None or self.read_residual_ns is None:
            return None
        return abs(self.read_offset_ns - self.shift_ns) <= self.read_residual_ns


@dataclass
class Trial:
    mode: str
    start_at_ns: int | None
    nodes: list[NodeTrial] = field(default_factory=list)
    arm_s: float = 0.0
    lead_ns: int = 0  # the lead a scheduled trial used
    late: int = 0  # nodes of a scheduled trial that armed after start_at
    retried: list[str] = field(default_factory=list)  # commands sent twice (connection lost)

    def _spread(self, values: list[int]) -> int:
        return max(values) - min(values)

    @property
    def raw_spread_ns(self) -> int:
        return self._spread([n.first_frame_ns for n in self.nodes])

    @property
    def fleet_spread_ns(self) -> int:
        return self._spread([n.fleet_ns for n in self.nodes])

    @property
    def true_spread_ns(self) -> int:
        return self._spread([n.true_ns for n in self.nodes])


@dataclass
class SyncResult:
    """Every trial of one run, with how the run was set up."""

    n: int
    delay_ms: float
    jitter_ms: float
    lead_ms: int
    settle_s: float
    shifts_ns: list[int]
    probe_shifts_ns: list[int] = field(default_factory=list)  # what Python saw, per node
    clean_offsets_ns: list[int] = field(default_factory=list)  # chronyd over a clean path
    trials: list[Trial] = field(default_factory=list)
    leftover_namespaces: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, mode: str) -> list[Trial]:
        return [t for t in self.trials if t.mode == mode]

    def spread_ms(self, mode: str, kind: str, p: float) -> float:
        values = [getattr(t, f"{kind}_spread_ns") for t in self.of(mode)]
        return percentile(values, p) / 1e6 if values else math.nan

    def node_trials(self) -> list[NodeTrial]:
        return [n for t in self.trials for n in t.nodes]

    def coverage(self, which: str) -> tuple[int, int]:
        """(covered, judged) over every node of every trial; ``which``: bound or residual."""
        marks = [getattr(n, f"{which}_covers") for n in self.node_trials()]
        judged = [m for m in marks if m is not None]
        return sum(judged), len(judged)

    def offset_errors_ms(self) -> list[float]:
        return [e / 1e6 for n in self.node_trials() if (e := n.offset_error_ns) is not None]

    def corrected(self) -> bool | None:
        """Whether the nodes moved scheduled starts by their offset: the median over nodes
        of (local first frame - start_at - offset) is near 0 when they did and near
        -offset when they did not. None without scheduled trials."""
        late = [
            abs(n.first_frame_ns - t.start_at_ns - (n.offset_ns or 0))
            for t in self.of("scheduled")
            if t.start_at_ns is not None
            for n in t.nodes
            if n.offset_ns and abs(n.offset_ns) > 2_000_000
        ]
        shifts = [abs(s) for s in self.shifts_ns]
        if not late or not shifts:
            return None
        return median(late) < median(shifts) / 2

    @property
    def clean(self) -> bool:
        return not self.leftover_namespaces and not self.problems
