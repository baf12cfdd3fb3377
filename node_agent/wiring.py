"""The one place that builds the agent's parts and hands each its collaborators.

``build_context(settings)`` creates the folders, resolves the node's identity and
constructs the command runner, the power monitor, the camera lock, the clock monitor,
the timelapse, the recorder and the coordinator link (nothing is started).
``AgentContext`` assembles the node's status from those parts' caches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from common.identity import load_or_create_key, public_key_text
from node_agent import __version__
from node_agent.audio.overrides import apply_overrides
from node_agent.audio.player import TonePlayer
from node_agent.audio.service import NodeAudio
from node_agent.audio.tone import ToneCache
from node_agent.camera.factory import make_backend
from node_agent.camera.lock import CameraLock
from node_agent.commands import CommandRunner
from node_agent.dashcam.service import Dashcam
from node_agent.discovery.wiring import build_link
from node_agent.link import CoordinatorLink, hostname
from node_agent.liveview.service import LiveView
from node_agent.liveview.source import with_lores
from node_agent.liveview.wiring import build_liveview
from node_agent.network.reader import CachedNetwork
from node_agent.network.schemas import NetworkStatus
from node_agent.network.service import NetworkService
from node_agent.network.wiring import build_network, network_status
from node_agent.notify.wiring import AgentNotifications, build_notifications, wire_notifications
from node_agent.power.monitor import PowerMonitor
from node_agent.power.wiring import build_power, power_gate, power_reading, wire_power
from node_agent.recorder.service import Recorder
from node_agent.recorder.spec import Identity
from node_agent.schemas import JoinRequest, NodeStatus, RecorderState
from node_agent.settings import AgentSettings, resolve_identity
from node_agent.statusfile.service import StatusFileService, StatusSources
from node_agent.storage.housekeeper import Housekeeper
from node_agent.sync.role import clock_role
from node_agent.telemetry.chrony import ClockMonitor
from node_agent.telemetry.disk import collect_disk
from node_agent.telemetry.reading import Reading
from node_agent.telemetry.thermal import read_temperature_c, read_thermal
from node_agent.timelapse.events import fan_out
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.schemas import TimelapseStatus
from node_agent.timelapse.wiring import build_timelapse


@dataclass
class AgentContext:
    """Everything a request handler may need, built once per app."""

    settings: AgentSettings
    node_id: str
    api_token: SecretStr
    recorder: Recorder
    housekeeper: Housekeeper
    clock: ClockMonitor
    timelapse: Timelapse
    link: CoordinatorLink | None
    started_monotonic: float
    key: Ed25519PrivateKey
    runner: CommandRunner  # every program the agent runs (dry-run aware)
    power: PowerMonitor  # the battery, its thresholds, and the clean shutdown
    dashcam: Dashcam | None = None  # when dashcam.enabled
    audio: NodeAudio | None = None  # tones and the audio track setting
    liveview: LiveView | None = None  # the live view (Grandma Mode)
    network: CachedNetwork | None = None  # made at the first status
    status_file: StatusFileService | None = None  # the status file (off: a no-op service)
    notifications: AgentNotifications | None = None  # alerts to Telegram, Discord, a webhook
    network_manager: NetworkService | None = None  # mesh / AP fallback when network.manage

    def status(self) -> NodeStatus:
        """This node's full status, from caches (no call blocks on hardware)."""
        rec = self.recorder.status()
        return NodeStatus(
            node_id=self.node_id,
            cam_id=self.settings.cam_id,
            position=self.settings.position,
            hostname=hostname(),
            version=__version__,
            time_ns=time.time_ns(),
            uptime_s=round(time.monotonic() - self.started_monotonic, 3),
            recorder=rec,
            clock=self.clock.latest,
            disk=self.housekeeper.disk_status(rec.bitrate_bps),
            coordinator=self.link.state if self.link else "none",
            coordinator_link=self.link.status() if self.link else None,
            timelapse=self.timelapse.status(),
            power=self.power.status(),
            dashcam=self.dashcam.status() if self.dashcam else None,
            audio=self.audio.status() if self.audio else None,
            liveview=self.liveview.status() if self.liveview else None,
            cpu_temp_c=cpu_temp_c(self.settings.gates.thermal_path),
            network=self.network_status(),
        )

    def network_status(self) -> NetworkStatus:
        """The network part of the status: the mode read, with the manager's link on top."""
        if self.network is None:
            self.network = CachedNetwork(self.settings.network)
        return network_status(self.network, self.network_manager)

    def readings(self) -> list[Reading[Any]]:
        """Every telemetry collector's latest result (read now where it is cheap)."""
        return [
            self.clock.reading(),
            collect_disk(self.settings.recordings_path, self.recorder.status().bitrate_bps),
            read_thermal(self.settings.gates.thermal_path),
            power_reading(self.power),
        ]

    def join_request(self) -> JoinRequest:
        """What this node tells the coordinator on every heartbeat."""
        return join_request(self.settings, self.node_id, self.api_token, self.key, self.recorder)


def join_request(
    settings: AgentSettings,
    node_id: str,
    api_token: SecretStr,
    key: Ed25519PrivateKey,
    recorder: Recorder,
) -> JoinRequest:
    """What this node tells the coordinator on every heartbeat."""
    rec = recorder.status()
    return JoinRequest(
        node_id=node_id,
        cam_id=settings.cam_id,
        position=settings.position,
        port=settings.port,
        api_token=api_token.get_secret_value(),
        public_key=public_key_text(key),
        version=__version__,
        hostname=hostname(),
        recorder_state=rec.state,
        session_id=rec.session_id,
    )


def cpu_temp_c(path: Path) -> float | None:
    """The CPU temperature for the status, rounded; None without a sensor (or a mad one)."""
    value = read_temperature_c(path)
    return round(value, 1) if value is not None and -100 <= value <= 250 else None


def timelapse_preview(timelapse: Timelapse) -> bytes | None:
    """While the timelapse holds the camera, a preview shows its last still."""
    path = timelapse.latest_still() if timelapse.running else None
    try:
        return path.read_bytes() if path is not None else None
    except OSError:
        return None


def active_file(recorder: Recorder | None) -> str | None:
    """The recording the recorder is writing (armed or running), if any."""
    job = recorder.active_job() if recorder is not None else None
    return job.path.name if job is not None else None


def build_context(settings: AgentSettings) -> AgentContext:
    """Create folders, resolve identity and build the parts (nothing started yet)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.recordings_path.mkdir(parents=True, exist_ok=True)
    node_id, api_token = resolve_identity(settings)
    apply_overrides(settings)  # the audio toggle's camera.audio, kept across restarts
    runner, power = build_power(settings)
    clock = build_clock(settings)
    lock = CameraLock(settings.data_dir / "camera.lock")
    notifications = build_notifications(settings, node_id)
    recorder: Recorder | None = None
    built: list[Timelapse] = []  # the status file's observer is needed to build the timelapse
    status_file = build_status_file(
        settings, node_id, lambda: built[0] if built else None, lambda: recorder
    )
    timelapse = build_timelapse(
        settings,
        lock,
        observer=fan_out(status_file.on_timelapse_event, notifications.alerts.timelapse_event),
        publish=status_file.publish,
        on_event=notifications.alerts.cycle_event,
    )
    built.append(timelapse)
    housekeeper = Housekeeper(
        settings.recordings_path,
        settings.storage,
        node_id,
        active_file=lambda: active_file(recorder),
        hold=lambda: recorder is not None and recorder.state == RecorderState.armed,
    )
    recorder = Recorder(
        settings.recordings_path,
        settings.camera,
        Identity(node_id, settings.cam_id, settings.position, __version__),
        clock,
        lock,
        settings.storage,
        settings.gates,
        settings.max_schedule_ahead_s,
        preview_fallback=lambda: timelapse_preview(timelapse),
        keeper=housekeeper,
        battery=partial(power_gate, power, settings.gates.min_battery_percent),
        sync=settings.sync,
        # Backends with a second small stream (picamera2's lores) stream one for the view.
        backend_factory=with_lores(make_backend, settings.liveview),
    )
    wire_power(power, recorder, timelapse, housekeeper)
    # The node's own key: it proves to the coordinator that a join comes from this node.
    key = load_or_create_key(settings.data_dir / "node_key.pem")
    link = build_link(
        settings, partial(join_request, settings, node_id, api_token, key, recorder), key
    )
    player = TonePlayer(settings.audio, ToneCache(settings.data_dir / "tones"), runner)
    dashcam = build_agent_dashcam(settings, node_id, runner, power)
    wire_notifications(notifications, recorder, housekeeper, power, dashcam)
    return AgentContext(
        settings,
        node_id,
        api_token,
        recorder,
        housekeeper,
        clock,
        timelapse,
        link,
        time.monotonic(),
        key,
        runner,
        power,
        dashcam,
        audio=NodeAudio(settings, player, recorder, clock),
        liveview=build_liveview(settings.liveview, recorder),
        status_file=status_file,
        notifications=notifications,
        network_manager=build_network(settings, dry_run=runner.dry_run),
    )


def build_status_file(
    settings: AgentSettings,
    node_id: str,
    timelapse: Callable[[], Timelapse | None],
    recorder: Callable[[], Recorder | None],
) -> StatusFileService:
    """The status file's writer, reading the timelapse and recorder once they are built."""

    def timelapse_status() -> TimelapseStatus:
        tl = timelapse()
        assert tl is not None, "the status file is written once the parts are built"
        return tl.status()

    def recorder_state() -> RecorderState:
        rec = recorder()
        return rec.state if rec is not None else RecorderState.idle

    def recorder_error() -> str | None:
        rec = recorder()
        return rec.last_error if rec is not None else None

    sources = StatusSources(
        device_id=node_id,
        timelapse=timelapse_status,
        recorder_state=recorder_state,
        temperature_c=partial(cpu_temp_c, settings.gates.thermal_path),
        disk_path=settings.data_dir,
        started_monotonic=time.monotonic(),
        recorder_error=recorder_error,
    )
    return StatusFileService(
        settings.status_file, sources, interval_s=settings.status_file_interval_s
    )


def build_clock(settings: AgentSettings) -> ClockMonitor:
    """The clock monitor: chronyc as ``sync:`` reaches it, the role ``sync.role`` gives."""
    sync = settings.sync
    return ClockMonitor(
        settings.chronyc_path,
        settings.clock_poll_interval_s,
        tuple(settings.chronyc_args),
        host=sync.chronyc_host,
        port=sync.chronyc_port,
        timeout_s=sync.chronyc_timeout_s,
        role=clock_role(sync, settings.cam_id, resolve=False),
        refresh_role=partial(clock_role, sync, settings.cam_id),
    )


def build_agent_dashcam(
    settings: AgentSettings, node_id: str, runner: CommandRunner, power: PowerMonitor
) -> Dashcam | None:
    """The dashcam loop when ``dashcam.enabled``, on the power monitor's decisions."""
    if not settings.dashcam.enabled:
        return None
    from node_agent.dashcam.wiring import build_dashcam, make_uploader, wire_dashcam_power

    uploader = make_uploader(settings, runner, node_id)
    dashcam = build_dashcam(settings, node_id, runner, lambda: power.decision, uploader)
    wire_dashcam_power(dashcam, power)
    return dashcam
