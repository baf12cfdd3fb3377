"""What every battery provider is, and the one place that picks one from the settings."""

from __future__ import annotations

import time
from typing import Protocol

from node_agent.commands import CommandRunner
from node_agent.power.schemas import PowerReading
from node_agent.power.settings import PowerSettings


class PowerProvider(Protocol):
    """Reads the battery. ``read`` never raises: a failure is a reading with ``ok`` false."""

    name: str

    def read(self) -> PowerReading:
        """One reading, now (may block up to ``power.timeout_s``: call it off the loop)."""
        ...


def failed(provider: str, error: str) -> PowerReading:
    """The reading of a provider that could not read: the error, and no values."""
    return PowerReading(provider=provider, ok=False, error=error[:500], read_at_ns=time.time_ns())


def make_provider(settings: PowerSettings, runner: CommandRunner) -> PowerProvider:
    """The provider ``power.provider`` names."""
    if settings.provider == "lifepo4wered":
        from node_agent.power.lifepo4wered import Lifepo4weredProvider

        return Lifepo4weredProvider(settings.lifepo4wered_cli, runner, settings.timeout_s)
    if settings.provider == "sysfs":
        from node_agent.power.sysfs import SysfsProvider

        return SysfsProvider(settings.sysfs_root, settings.supply)
    if settings.provider == "command":
        from node_agent.power.command import CommandProvider

        assert settings.command is not None  # the settings' validator
        return CommandProvider(list(settings.command), runner, settings.timeout_s)
    from node_agent.power.none import NoProvider

    return NoProvider()
