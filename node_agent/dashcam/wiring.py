"""Builds the dashcam's parts from the agent's settings (the agent and ``camfleet dashcam``).

``PolicyReader`` is the power decision for a process without the power monitor: each call
reads the provider and applies the pure policy (with its hysteresis). The agent passes its
power monitor's cached ``decision`` instead when it has one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from node_agent import __version__
from node_agent.commands import CommandRunner
from node_agent.dashcam.ingest import Ingestor
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.service import Dashcam, UploaderLike
from node_agent.power.policy import START, Decision, Thresholds, decide
from node_agent.power.provider import PowerProvider, make_provider
from node_agent.power.usb import make_usb
from node_agent.settings import AgentSettings

log = logging.getLogger(__name__)


def thresholds(settings: AgentSettings) -> Thresholds:
    """The policy's thresholds from ``power.*`` and ``gates.min_battery_percent``."""
    p = settings.power
    return Thresholds(
        warn=p.warn_percent,
        refuse_start=settings.gates.min_battery_percent,
        disconnect=p.disconnect_percent,
        shutdown=p.shutdown_percent,
        hysteresis=p.hysteresis_percent,
        confirm_readings=p.confirm_readings,
        stale_after_s=p.stale_after_s,
    )


class PolicyReader:
    """A power decision read on demand (blocking: call it off the event loop)."""

    def __init__(self, provider: PowerProvider, t: Thresholds) -> None:
        self.provider = provider
        self.thresholds = t
        self.decision = START

    def __call__(self) -> Decision:
        reading = self.provider.read()
        self.decision = decide(
            reading, time.time_ns(), self.decision, self.thresholds, self.provider.name
        )
        return self.decision


def policy_reader(settings: AgentSettings, runner: CommandRunner) -> PolicyReader:
    """A ``PolicyReader`` over the provider ``power.provider`` names."""
    return PolicyReader(make_provider(settings.power, runner), thresholds(settings))


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


def make_uploader(settings: AgentSettings, runner: CommandRunner) -> UploaderLike:
    """The rsync uploader of ``dashcam.upload``."""
    return OfflineUploader()
