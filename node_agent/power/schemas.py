"""Power on the wire: one battery reading and the node's power status (part of NodeStatus)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PowerLevel(StrEnum):
    """Where the battery stands against the thresholds, most severe last."""

    mains = "mains"  # provider 'none': no battery, mains assumed
    unknown = "unknown"  # the provider failed, or its reading is stale: nothing is done
    ac = "ac"  # on AC power: thresholds ignored
    ok = "ok"
    warn = "warn"  # under power.warn_percent
    low = "low"  # under gates.min_battery_percent: starts refused
    disconnect = "disconnect"  # under power.disconnect_percent: recording stopped, camera off
    shutdown = "shutdown"  # under power.shutdown_percent: files finished, machine shut down


# Levels a battery reading can put the node in, least severe first (mains, unknown and
# ac are not on this scale).
SEVERITY: tuple[PowerLevel, ...] = (
    PowerLevel.ok,
    PowerLevel.warn,
    PowerLevel.low,
    PowerLevel.disconnect,
    PowerLevel.shutdown,
)


class PowerReading(BaseModel):
    """What one provider call said. A provider that failed is a reading too: ``ok`` false
    and ``error`` saying why, every value None."""

    model_config = ConfigDict(extra="ignore")

    provider: str = Field(description="none, lifepo4wered, sysfs or command.")
    ok: bool
    error: str | None = None
    percent: float | None = Field(default=None, ge=0, le=100)
    voltage_v: float | None = Field(default=None, ge=0, le=100)
    on_ac: bool | None = Field(default=None, description="None when the provider cannot tell.")
    charging: bool | None = None
    read_at_ns: int = Field(description="Wall-clock time of the reading.")


class PowerStatus(BaseModel):
    """The node's power, as its power monitor sees it."""

    model_config = ConfigDict(extra="ignore")

    provider: str
    level: PowerLevel
    reason: str = Field(description="A sentence a person can act on.")
    reading: PowerReading | None = None
    age_s: float | None = Field(default=None, description="Seconds since the last reading.")
    camera_powered: bool | None = Field(
        default=None,
        description="Whether the camera has power (a USB camera through uhubctl or the "
        "control scripts); None when the node does not switch it.",
    )
    shutting_down: bool = False
    actions: list[str] = Field(
        default_factory=list,
        description="The last things the power monitor did, newest last, with their time.",
    )
