"""Settings of the fleet's clock: this node's chrony role and how chronyc is reached."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SyncSettings(BaseModel):
    """``sync:``: the node's chrony role, where the master is, how chronyc is reached."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["auto", "master", "client", "none"] = Field(
        default="auto",
        description="auto: master when cam_id is master_cam_id, else client; none: a "
        "stand-alone camera whose clock is not the fleet's (the clock gate only warns).",
    )
    master_cam_id: str = Field(default="CAM_C", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
    master_host: str = Field(
        default="cam-c.local",
        pattern=r"^[A-Za-z0-9._:-]{1,253}$",
        description="Where clients find the master's NTP server.",
    )
    master_port: int = Field(default=123, ge=1, le=65535)
    upstream_servers: list[str] = Field(
        default_factory=lambda: ["2.debian.pool.ntp.org"],
        description="The master's upstream pools when the field has Internet.",
    )
    allow: list[str] = Field(
        default_factory=lambda: ["10.42.0.0/16", "192.168.4.0/24"],
        description="Networks the master serves NTP to.",
    )
    local_stratum: int = Field(default=8, ge=1, le=15)
    client_minpoll: int = Field(default=1, ge=-6, le=10)
    client_maxpoll: int = Field(default=3, ge=-6, le=10)
    chronyc_host: str | None = Field(
        default=None,
        description="chronyc's -h: a host name or address, or the path of chronyd's Unix "
        "socket; None: chronyc's default.",
    )
    chronyc_port: int | None = Field(default=None, ge=1, le=65535, description="chronyc's -p.")
    chronyc_timeout_s: float = Field(default=3.0, gt=0, le=60)
    chrony_unit: str = Field(
        default="chrony.service",
        pattern=r"^[A-Za-z0-9@._-]{1,128}$",
        description="The systemd unit `camfleet sync role` restarts after writing the config.",
    )
    conf_path: str = Field(
        default="/etc/chrony/conf.d/camfleet.conf",
        description="Where `camfleet sync role` writes the rendered chrony configuration.",
    )
    correct_start_by_offset: bool = Field(
        default=True,
        description="Shift a scheduled start by the measured clock offset, so a clock chrony "
        "does not steer (chronyd -x) still starts at the fleet's instant.",
    )

    @model_validator(mode="after")
    def _polls_in_order(self) -> SyncSettings:
        if self.client_minpoll > self.client_maxpoll:
            raise ValueError(
                f"sync.client_minpoll {self.client_minpoll} > client_maxpoll "
                f"{self.client_maxpoll}: a client polls every 2^minpoll to 2^maxpoll s"
            )
        return self
