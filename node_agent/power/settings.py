"""Power settings (``power:`` in the agent's YAML, ``CAMFLEET_POWER__*`` in the env).

Thresholds come from the dashcam seed (disconnect the camera under 50 %, shut down
under 25 %); they apply to every node on a battery. In order, from the top:

- ``warn_percent``: the status warns (plan a charge);
- ``gates.min_battery_percent``: a start is refused;
- ``disconnect_percent``: a recording is stopped cleanly and the camera powered down;
- ``shutdown_percent``: every file and manifest is finished, the recordings disk synced
  and unmounted, and the machine shut down.

On AC power every threshold is ignored (the seed: "ignore battery thresholds and
prefer uploads").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProviderName = Literal["none", "lifepo4wered", "sysfs", "command"]


class PowerSettings(BaseModel):
    """Where the battery reading comes from and what each level does."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName = Field(
        default="none",
        description="none (mains, no battery), lifepo4wered (the LiFePO4wered/Pi HAT's "
        "lifepo4wered-cli), sysfs (/sys/class/power_supply), or command (any program "
        "printing one JSON object, e.g. the seed's battery-info.sh).",
    )
    command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="provider 'command': the program and its arguments, e.g. "
        "['/home/pi/camera-scripts/battery-info.sh'].",
    )
    lifepo4wered_cli: str = Field(
        default="lifepo4wered-cli", description="provider 'lifepo4wered': the program to run."
    )
    sysfs_root: Path = Field(
        default=Path("/sys/class/power_supply"), description="provider 'sysfs': the class folder."
    )
    supply: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="provider 'sysfs': the battery's folder name (default: the first of "
        "type Battery).",
    )
    poll_interval_s: float = Field(default=10.0, gt=0, le=3600)
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="Per provider call.")
    stale_after_s: float = Field(
        default=120.0,
        gt=0,
        description="A reading older than this is not acted on (the provider stopped "
        "answering): the status says so and nothing is shut down on old news.",
    )
    warn_percent: float = Field(default=60.0, ge=0, le=100)
    disconnect_percent: float = Field(default=50.0, ge=0, le=100)
    shutdown_percent: float = Field(default=25.0, ge=0, le=100)
    hysteresis_percent: float = Field(
        default=3.0,
        ge=0,
        le=20,
        description="A level is left only when the battery is this much above its "
        "threshold again, so a reading that wobbles at a threshold does not flap.",
    )
    confirm_readings: int = Field(
        default=2,
        ge=1,
        le=20,
        description="Consecutive readings under shutdown_percent before the machine is shut "
        "down: one glitched reading never ends a match.",
    )
    shutdown_command: list[str] = Field(
        default_factory=lambda: ["systemctl", "poweroff"],
        min_length=1,
        description="How the machine is shut down, e.g. ['shutdown', '-h', 'now'].",
    )
    unmount_recordings: bool = Field(
        default=True,
        description="Before shutting down, unmount the recordings disk when it is a mount "
        "of its own (never the root file system).",
    )

    @model_validator(mode="after")
    def _provider_has_what_it_needs(self) -> PowerSettings:
        if self.provider == "command" and not self.command:
            raise ValueError(
                "power.provider is 'command' but power.command is not set: give the program "
                "and its arguments as a list, e.g. ['/usr/local/bin/battery-info.sh']"
            )
        if not self.shutdown_percent < self.disconnect_percent <= self.warn_percent:
            raise ValueError(
                "power thresholds must be shutdown_percent < disconnect_percent <= "
                f"warn_percent; got {self.shutdown_percent:g} < {self.disconnect_percent:g} "
                f"<= {self.warn_percent:g}"
            )
        return self
