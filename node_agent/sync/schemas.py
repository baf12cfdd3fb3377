"""The clock's wire models: chrony's sources and tracking as status, and the camera's
frame-level sync report."""

from __future__ import annotations

from pydantic import Field

from node_agent.wirebase import Answer


class FrameSyncReport(Answer):
    """libcamera's software camera sync on this recording (``camera.frame_sync``)."""

    mode: str = Field(description="server, client, or off.")
    ready: bool = Field(description="libcamera reported SyncReady before the recording began.")
    timer_us: int | None = Field(
        default=None,
        description="SyncTimer on the first SyncReady frame: how far (µs) this camera's "
        "frame start was from the agreed instant; a client's frame-start difference from "
        "the server.",
    )
    waited_ms: float = Field(default=0.0, description="How long the recorder waited for it.")
    error: str | None = Field(
        default=None, description="Why sync is not in effect (timed out, not a Pi camera)."
    )


class ChronySource(Answer):
    """One line of ``chronyc -c sources`` joined with its ``sourcestats`` line."""

    address: str
    mode: str = Field(description="server, peer or refclock.")
    state: str = Field(
        description="selected, combined, not_combined, unreachable, falseticker, jittery "
        "or unknown."
    )
    stratum: int
    poll_log2: int
    reach: int = Field(description="The reachability register (0-255).")
    last_rx_s: float | None = Field(default=None, description="Seconds since the last sample.")
    offset_ns: int | None = Field(default=None, description="Last sample's adjusted offset.")
    error_ns: int | None = Field(default=None, description="Its error margin.")
    samples: int | None = None
    frequency_ppm: float | None = None
    skew_ppm: float | None = None
    std_dev_ns: int | None = None


class ClockStatus(Answer):
    """The node's clock as chrony reports it."""

    source: str = Field(description="'chrony' when chronyc answered, else 'none'.")
    synchronized: bool
    offset_ns: int | None = Field(
        default=None, description="Local clock minus reference time; positive = ahead."
    )
    stratum: int | None = None
    reference: str | None = None
    error: str | None = None
    read_at_ns: int | None = None
    # Issue 10 contract: the full tracking report, the bound, the role and the sources.
    error_bound_ns: int | None = Field(
        default=None,
        description="|offset| + root dispersion + root delay / 2: how far from the fleet's "
        "time this clock may be.",
    )
    offset_error_ns: int | None = Field(
        default=None,
        description="root dispersion + root delay / 2: how wrong the offset itself may be, "
        "so the error left once a start is corrected by it.",
    )
    rms_offset_ns: int | None = None
    frequency_ppm: float | None = None
    skew_ppm: float | None = None
    root_delay_ns: int | None = None
    root_dispersion_ns: int | None = None
    leap_status: str | None = None
    reference_id: str | None = None
    selected_source: str | None = None
    last_update_age_s: float | None = None
    role: str | None = Field(default=None, description="master, client or none.")
    master: str | None = Field(default=None, description="The master a client follows.")
    follows_master: bool | None = None
    sources: list[ChronySource] = Field(default_factory=list)
