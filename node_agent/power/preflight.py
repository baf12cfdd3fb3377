"""Power preflight, at agent start: is every program the power settings name there, and
does the battery answer? Each problem is a sentence that names the fix.

Problems are logged and shown in the power status; none is fatal (a node that cannot
read its battery still records, with a warning at every start).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from node_agent.commands import CommandRunner
from node_agent.power.provider import make_provider
from node_agent.power.settings import PowerSettings

LIFEPO4WERED_INSTALL = (
    "install the LiFePO4wered/Pi software from its maker (it provides lifepo4wered-cli; "
    "github.com/xorbit/LiFePO4wered-Pi), or set power.lifepo4wered_cli to its full path"
)


def find_program(
    program: str, which: Callable[[str], str | None] = shutil.which
) -> tuple[str | None, str | None]:
    """The program's path and None, or None and why it cannot be run."""
    if os.sep in program:
        if not os.path.isfile(program):
            return None, f"{program} does not exist"
        if not os.access(program, os.X_OK):
            return None, f"{program} is not executable (chmod +x it)"
        return program, None
    found = which(program)
    return (found, None) if found else (None, f"{program} is not on PATH")


def preflight_problems(
    settings: PowerSettings,
    runner: CommandRunner,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """What is wrong with the power settings on this machine; empty when nothing is.

    Runs the battery provider once (a read-only call, so under dry-run too)."""
    if settings.provider == "none":
        return []  # mains: nothing is read and nothing is ever shut down
    problems: list[str] = []
    runnable = True
    if settings.provider == "lifepo4wered":
        _, why = find_program(settings.lifepo4wered_cli, which)
        if why is not None:
            problems.append(f"power.provider lifepo4wered: {why}: {LIFEPO4WERED_INSTALL}")
            runnable = False
    elif settings.provider == "command":
        assert settings.command is not None  # the settings' validator
        _, why = find_program(settings.command[0], which)
        if why is not None:
            problems.append(f"power.command: {why}")
            runnable = False
    if runnable:
        reading = make_provider(settings, runner).read()
        if not reading.ok:
            problems.append(f"power.provider {settings.provider}: {reading.error}")
    _, why = find_program(settings.shutdown_command[0], which)
    if why is not None:
        problems.append(
            f"power.shutdown_command: {why}: the machine could not be shut down at "
            f"{settings.shutdown_percent:g} %"
        )
    return problems
