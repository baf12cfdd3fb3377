"""What the agent's parts tell, turned into alerts with a stable key per event.

Each part has one small hook (the timelapse's observer, the recorder's ``on_finished``
and ``on_arm_failed``, the housekeeper's ``on_level``, the power monitor's
``on_level``, the dashcam's ``on_problem``); the policy of what is worth a message, at
which level, under which key, is all here. Keys end in the device id
(``disk_critical:cam-c``), so the repeat window holds each event back per device.
Every method is called from the part's own thread or loop and only queues (see
``common.notify.notifier``).
"""

from __future__ import annotations

from common.notify import Level, Notifier
from node_agent.power.schemas import SEVERITY, PowerLevel
from node_agent.recorder.counters import RecordingCounters
from node_agent.recorder.policies import DISK_RESERVE_REACHED
from node_agent.schemas import DiskLevel
from node_agent.storage.levels import size_text
from node_agent.timelapse.events import TimelapseEvent

# The spec: "Camera error (3+ consecutive)".
CAMERA_ERRORS = 3
# The spec: "Disk warning (>80%)" WARNING, "Disk critical (>90%)" ERROR, of the disk used.
DISK_WARNING_USED_PERCENT = 80.0
DISK_CRITICAL_USED_PERCENT = 90.0
# How the power wiring words a stop for the battery (node_agent.power.wiring).
BATTERY_STOP = "battery under"

_BATTERY = {
    PowerLevel.warn: (Level.warning, "battery_warn", "battery low, plan a charge"),
    PowerLevel.low: (Level.warning, "battery_low", "battery low: recordings are refused"),
    PowerLevel.disconnect: (
        Level.error,
        "battery_disconnect",
        "battery very low: recording stopped and the camera powered down",
    ),
    PowerLevel.shutdown: (Level.critical, "battery_shutdown", "battery empty: shutting down"),
}


class AgentAlerts:
    """The agent's events as alerts (see the module docstring)."""

    def __init__(
        self,
        notifier: Notifier,
        disk_warning_used: float = DISK_WARNING_USED_PERCENT,
        disk_critical_used: float = DISK_CRITICAL_USED_PERCENT,
    ) -> None:
        self.notifier = notifier
        self.disk_warning_used = disk_warning_used
        self.disk_critical_used = disk_critical_used
        self.device = notifier.device_id
        self._recorder_errors = 0
        self._battery_rank = 0  # the most severe battery level told since it was last ok

    def _tell(self, event: str, level: Level, message: str) -> None:
        self.notifier.notify(message, level, f"{event}:{self.device}")

    # -- timelapse ------------------------------------------------------------------------

    def timelapse_event(self, ev: TimelapseEvent) -> None:
        """The timelapse's observer: a camera failing 3+ times in a row, a failed render,
        a run that ended on an error."""
        if ev.kind == "failure" and ev.failures >= CAMERA_ERRORS:
            self._tell(
                "camera_errors",
                Level.error,
                f"timelapse camera failed {ev.failures} times in a row: {ev.detail}",
            )
        elif ev.kind == "render_failed":
            self._tell("video_failed", Level.error, f"timelapse video not created: {ev.detail}")
        elif ev.kind == "schedule_failed":
            self._tell("schedule_failed", Level.warning, f"timelapse schedule: {ev.detail}")

    def cycle_event(self, kind: str, message: str, level: str) -> None:
        """The daily cycle's events (``node_agent.timelapse.cycle``): a failed render or
        backup is an error; a video made or backed up is INFO (sent when min_level is
        INFO, as the spec's optional "Video created")."""
        keys = {"video_creation_failed": "video_failed", "backup_failed": "backup_failed"}
        self._tell(keys.get(kind, kind), Level.parse(level), message)

    # -- recorder ------------------------------------------------------------------------

    def recording_finished(self, counters: RecordingCounters) -> None:
        """A recording ended: an error counts towards the camera's streak; a stop for the
        disk or the battery is told at once."""
        reason = counters.stop_reason
        if counters.error:
            self._recorder_failed(counters.error)
        elif counters.frames:
            self._recorder_errors = 0
        if reason.startswith(DISK_RESERVE_REACHED):
            self._tell("recording_stopped_disk", Level.error, f"recording stopped: {reason}")
        elif reason.startswith(BATTERY_STOP):
            self._tell("recording_stopped_battery", Level.error, f"recording stopped: {reason}")

    def arming_failed(self, note: str) -> None:
        """A start could not open the camera or the encoder."""
        self._recorder_failed(note)

    def _recorder_failed(self, why: str) -> None:
        self._recorder_errors += 1
        if self._recorder_errors >= CAMERA_ERRORS:
            self._tell(
                "camera_errors",
                Level.error,
                f"recorder camera failed {self._recorder_errors} times in a row: {why}",
            )

    # -- disk, battery, dashcam -----------------------------------------------------------------

    def disk_level(self, level: DiskLevel, free_percent: float, free_bytes: int) -> None:
        """Each housekeeping round: over 80 % used is a warning (WARNING), over 90 % is
        critical (ERROR), as the spec has them; the housekeeper's own levels (its
        ``warn_free_percent`` and ``critical_free_percent``, where starts are refused) count
        too when they are stricter."""
        used = 100.0 - free_percent
        text = f"disk {used:.0f} % used ({size_text(free_bytes)} free)"
        if level == DiskLevel.critical:
            self._tell("disk_critical", Level.error, f"{text}: starts are refused, offload now")
        elif used > self.disk_critical_used:
            self._tell("disk_critical", Level.error, f"{text}: offload now")
        elif level == DiskLevel.warn or used > self.disk_warning_used:
            self._tell("disk_warning", Level.warning, f"{text}: offload soon")

    def power_level(self, old: PowerLevel, new: PowerLevel, reason: str) -> None:
        """The battery entered a more severe level (a recovery, or an unusable reading
        between two of the same level, says nothing)."""
        if new == PowerLevel.unknown:
            return
        rank = SEVERITY.index(new) if new in SEVERITY else 0
        before, self._battery_rank = self._battery_rank, rank
        entry = _BATTERY.get(new)
        if entry is None or rank <= before:
            return
        level, event, text = entry
        self._tell(event, level, f"{text} ({reason})")

    def dashcam_problem(self, kind: str, detail: str) -> None:
        """The dashcam's upload to the NAS (the backup) or its cycle failed."""
        if kind == "upload":
            self.backup_failed("dashcam backup to the NAS", detail)
        else:
            self._tell("dashcam_failed", Level.error, f"dashcam cycle {detail}")

    def backup_failed(self, what: str, detail: str) -> None:
        """A backup did not complete (the dashcam's upload; the timelapse cycle's backup
        calls this too)."""
        self._tell("backup_failed", Level.error, f"{what} failed: {detail}")
