"""How the agent builds its notifications and hooks them to its parts; ``node_agent.wiring``
and ``node_agent.main`` call these."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from common.notify import Notifier, SummaryScheduler, build_notifier, format_daily_summary
from node_agent.dashcam.service import Dashcam
from node_agent.notify.alerts import AgentAlerts
from node_agent.notify.summary import agent_summary
from node_agent.power.monitor import PowerMonitor
from node_agent.recorder.service import Recorder
from node_agent.schemas import NodeStatus
from node_agent.settings import AgentSettings
from node_agent.storage.housekeeper import Housekeeper

log = logging.getLogger(__name__)


@dataclass
class AgentNotifications:
    """The notifier, the event policy and the daily summary's scheduler."""

    notifier: Notifier
    alerts: AgentAlerts
    summary: SummaryScheduler | None = None

    def start(self, status: Callable[[], NodeStatus], settings: AgentSettings) -> None:
        """Start the daily summary (when on and a channel is set)."""
        n = settings.notifications
        if not (n.daily_summary and self.notifier.enabled):
            return
        hour, minute = n.summary_at
        self.summary = SummaryScheduler(lambda day: self.send_summary(day, status), hour, minute)
        self.summary.start()
        log.info("daily summary at %s local time", n.daily_summary_time)

    def send_summary(self, day: dt.date, status: Callable[[], NodeStatus]) -> None:
        """Send the summary of ``day`` now."""
        since = dt.datetime.combine(day, dt.time()).astimezone().timestamp()
        problems = self.notifier.problems_since(since)
        text = format_daily_summary(agent_summary(self.notifier.device_id, day, status(), problems))
        self.notifier.notify_plain(text, "INFO", f"daily_summary:{self.notifier.device_id}:{day}")

    def stop(self) -> None:
        """Stop the scheduler; give queued alerts a moment to go."""
        if self.summary is not None:
            self.summary.stop()
        self.notifier.close()


def build_notifications(settings: AgentSettings, node_id: str) -> AgentNotifications:
    """The notifier of ``notifications:`` (device id: the node id unless set)."""
    notifier = build_notifier(settings.notifications, node_id)
    if notifier.enabled:
        names = ", ".join(c.name for c in notifier.channels)
        log.info("notifications from %s to %s", notifier.device_id, names)
    return AgentNotifications(notifier, AgentAlerts(notifier))


def wire_notifications(
    n: AgentNotifications,
    recorder: Recorder,
    housekeeper: Housekeeper,
    power: PowerMonitor,
    dashcam: Dashcam | None,
) -> None:
    """Hook the alerts to the parts that have events (the timelapse gets its observer
    when it is built)."""
    alerts = n.alerts
    recorder.on_finished = alerts.recording_finished
    recorder.on_arm_failed = alerts.arming_failed
    housekeeper.on_level = alerts.disk_level
    power.on_level = alerts.power_level
    if dashcam is not None:
        dashcam.on_problem = alerts.dashcam_problem
