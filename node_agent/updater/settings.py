"""``updater:``: where releases come from, the key they must be signed with, where they go."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from node_agent.wirebase import PublicKey


class UpdaterSettings(BaseModel):
    """Settings of the signed updater (docs/updates.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True, description="Off: the update routes answer 404 and nothing is checked."
    )
    feed_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S{1,2000}$",
        description="A GitHub Releases JSON list (e.g. .../repos/OWNER/NAME/releases).",
    )
    public_key: PublicKey | None = Field(
        default=None,
        description="The release key's public half (camfleet release keygen prints it); "
        "without it nothing is installed.",
    )
    allow_prerelease: bool = False
    retry_when_idle: bool = Field(
        default=False,
        description="An apply during a recording is queued (409 still) and runs when the "
        "recorder is idle again.",
    )
    keep_versions: int = Field(
        default=3, ge=2, le=20, description="Installed versions kept (current and previous always)."
    )
    install_root: Path = Path("/opt/camfleet")
    base_venv: Path | None = Field(
        default=None,
        description="The venv holding the third-party dependencies (default install_root/base).",
    )
    unit: str = Field(default="camfleet-agent", pattern=r"^[A-Za-z0-9@._-]{1,128}$")
    systemctl: str = "systemctl"
    finisher_unit: str = Field(
        default="camfleet-update@.service",
        pattern=r"^[A-Za-z0-9_-]{1,100}@\.service$",
        description="The template unit the finisher runs in, as INSTANCE = the version being "
        "replaced (deploy/systemd/camfleet-update@.service): a unit of its own, so the "
        "agent's restart does not kill it.",
    )
    health_deadline_s: float = Field(
        default=60.0, gt=0, le=3600, description="The new version must be healthy within this."
    )
    health_url: str | None = Field(
        default=None,
        description="Where the restarted agent answers (default http://127.0.0.1:<port>).",
    )
    finisher_grace_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="A pending update nobody is finishing (a crash) is taken up again after "
        "this long.",
    )
    max_download_bytes: int = Field(default=300 * 1024 * 1024, ge=1024)
    feed_timeout_s: float = Field(default=15.0, gt=0, le=300)
    download_attempts: int = Field(default=5, ge=1, le=50)
    install_timeout_s: float = Field(default=600.0, gt=0, le=7200)

    @property
    def base(self) -> Path:
        """The dependencies' venv."""
        return self.base_venv or self.install_root / "base"
