"""Builds the dashcam's parts from the agent's settings (the agent and ``camfleet dashcam``)
and ties the loop to the power monitor: its decision drives each cycle, a disconnect
wakes the loop at once (camera off now, not at the next poll), a shutdown stops it first
(card unmounted, camera safe), and the monitor is told whether the camera has power."""

from __future__ import annotations

from collections.abc import Callable

from node_agent import __version__
from node_agent.commands import CommandRunner
from node_agent.dashcam.ingest import Ingestor
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.service import Dashcam, UploaderLike
from node_agent.dashcam.upload import Uploader
from node_agent.power.monitor import PowerMonitor
from node_agent.power.policy import Decision
from node_agent.power.usb import make_usb
from node_agent.settings import AgentSettings


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


def make_uploader(settings: AgentSettings, runner: CommandRunner, node_id: str) -> UploaderLike:
    """The rsync uploader of ``dashcam.upload`` (over the same staging folder)."""
    d = settings.dashcam
    return Uploader(
        d.upload,
        d.poll,
        Ledger(d.paths.local_staging),
        runner,
        settings.data_dir,
        node_id,
        settings.cam_id,
    )


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
