"""Builds the dashcam's parts from the agent's settings (the agent and ``camfleet dashcam``)
and ties the loop to the power monitor: its decision drives each cycle, a disconnect
wakes the loop at once (camera off now, not at the next poll), a shutdown stops it first
(card unmounted, camera safe), and the monitor is told whether the camera has power."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from node_agent import __version__
from node_agent.commands import CommandRunner
from node_agent.dashcam.ingest import Ingestor
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.service import Dashcam, UploaderLike
from node_agent.power.monitor import PowerMonitor
from node_agent.power.policy import Decision
from node_agent.power.usb import make_usb
from node_agent.settings import AgentSettings

log = logging.getLogger(__name__)


def build_dashcam(
    settings: AgentSettings,
    node_id: str,
    runner: CommandRunner,
    power: Callable[[], Decision],
    uploader: UploaderLike,
) -> Dashcam:
    """The dashcam loop over the staging folder ``dashcam.paths.local_staging``."""
    d = settings.dashcam
    ledger = Ledger(d.paths.local_staging)
    ingestor = Ingestor(ledger, node_id, settings.cam_id, __version__, d.camera.file_extensions)
    return Dashcam(d, make_usb(d.camera, runner), runner, power, uploader, ingestor)


class OfflineUploader:
    """Stands in while this build has no uploader: the NAS is never reachable, so the
    camera keeps recording and nothing is copied or deleted."""

    def reachable(self) -> bool:
        """Never."""
        log.warning("no uploader in this build (node_agent.dashcam.upload): staying offline")
        return False

    async def upload_pending(self) -> list[Any]:
        """Nothing."""
        return []


def make_uploader(settings: AgentSettings, runner: CommandRunner, node_id: str) -> UploaderLike:
    """The rsync uploader of ``dashcam.upload`` (over the same staging folder)."""
    return OfflineUploader()


def wire_dashcam_power(dashcam: Dashcam, power: PowerMonitor) -> None:
    """The power monitor's levels, as the dashcam acts on them (see the module docstring)."""

    async def camera_off_now() -> None:
        dashcam.wake()

    async def stop_dashcam() -> None:
        await dashcam.stop()

    def camera_powered(on: bool | None) -> None:
        power.camera_powered = on

    power.on_disconnect(camera_off_now)
    power.on_reconnect(camera_off_now)
    power.on_shutdown(stop_dashcam)
    dashcam.on_camera = camera_powered
