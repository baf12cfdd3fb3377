"""How the agent runs its timelapse: build it, start it at boot, reload it on SIGHUP, stop it.

``node_agent.main`` calls these three functions, so its own changes stay one line each.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from node_agent.camera.lock import CameraLock
from node_agent.errors import AgentError
from node_agent.settings import AgentSettings, load_agent_settings
from node_agent.timelapse.backup import RsyncBackup
from node_agent.timelapse.cycle import DailyCycle, OnEvent, Publish
from node_agent.timelapse.events import Observer
from node_agent.timelapse.reload import reload_settings
from node_agent.timelapse.runner import Timelapse

log = logging.getLogger(__name__)


def build_timelapse(
    settings: AgentSettings,
    lock: CameraLock,
    observer: Observer | None = None,
    *,
    publish: Publish | None = None,
    on_event: OnEvent | None = None,
) -> Timelapse:
    """The agent's Timelapse, sharing the recorder's camera lock (nothing started);
    ``observer`` hears each capture, failure and render (the status file, the
    notifications).

    With a capture window (``timelapse.window`` fixed or sun) it gets its daily cycle,
    which tells ``publish`` each state change and ``on_event`` each video and backup
    (see ``node_agent.timelapse.cycle``).
    """
    first = settings.camera.profile_list()[0]
    timelapse = Timelapse(
        settings.timelapse,
        source=settings.camera.source,
        device=settings.camera.device,
        camera_width=first.width,
        camera_height=first.height,
        camera_fps=first.fps,
        cam_id=settings.cam_id,
        data_dir=settings.data_dir,
        lock=lock,
        observer=observer,
    )
    tl = settings.timelapse
    if tl.window != "none":
        backup = None
        if tl.backup is not None:
            backup = RsyncBackup(tl.backup, data_dir=settings.data_dir, cam_id=settings.cam_id)
        timelapse.cycle = DailyCycle(
            timelapse,
            lambda: timelapse.settings,
            timelapse.clock,
            publish=publish,
            on_event=on_event,
            backup=backup,
        )
    return timelapse


async def timelapse_up(timelapse: Timelapse | None, settings: AgentSettings) -> bool:
    """Start the timelapse when ``autostart`` is set and install the SIGHUP reload.

    Returns whether the SIGHUP handler was installed (only possible in the main
    thread; an app served from another thread, as in tests, has none).
    """
    if timelapse is None:
        return False
    if timelapse.cycle is not None:
        await asyncio.to_thread(timelapse.cycle.start)  # the window decides when to capture
    elif settings.timelapse.autostart:
        try:
            await asyncio.to_thread(timelapse.start)
        except AgentError as err:
            log.error("timelapse autostart failed: %s", err.message)
            timelapse.report("schedule_failed", f"autostart failed: {err.message}")

    def on_sighup() -> None:
        reload_settings(
            settings,
            timelapse,
            lambda: load_agent_settings(host=settings.host, port=settings.port),
        )

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
    except (ValueError, RuntimeError) as err:  # not the main thread (e.g. in-process tests)
        log.info("no SIGHUP reload in this process: %s", err)
        return False
    return True


async def timelapse_down(timelapse: Timelapse | None, sighup_installed: bool) -> None:
    """Remove the SIGHUP reload and stop the timelapse (camera closed, lock released)."""
    if sighup_installed:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    if timelapse is not None and timelapse.cycle is not None:
        await asyncio.to_thread(timelapse.cycle.stop)
    if timelapse is not None:
        await asyncio.to_thread(timelapse.stop)
