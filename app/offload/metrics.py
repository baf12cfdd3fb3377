"""The offload's Prometheus series, on the coordinator's registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.offload.models import FileState


@dataclass
class OffloadMetrics:
    """Bytes pulled, files by outcome, corrupt copies and jobs under way."""

    bytes_total: Counter
    files_total: Counter
    corrupt_total: Counter
    jobs_running: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> OffloadMetrics:
        """Create the series (every outcome at 0, so a rate() has a start)."""
        files = Counter(
            "camfleet_offload_files",
            "Files an offload finished, by outcome",
            ["outcome"],
            registry=registry,
        )
        for outcome in (
            FileState.confirmed,
            FileState.archived,
            FileState.skipped,
            FileState.failed,
            FileState.corrupt,
        ):
            files.labels(outcome.value)
        return cls(
            bytes_total=Counter(
                "camfleet_offload_bytes",
                "Bytes pulled from nodes into the archive",
                registry=registry,
            ),
            files_total=files,
            corrupt_total=Counter(
                "camfleet_offload_corrupt",
                "Copies whose SHA-256 did not match the manifest (both copies kept)",
                registry=registry,
            ),
            jobs_running=Gauge(
                "camfleet_offload_jobs_running", "Offload jobs under way", registry=registry
            ),
        )
