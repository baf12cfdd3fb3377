"""``camfleet dashcam``: the dashcam loop alone, as its own service (the seed's daemon).

It runs the preflight (refusing to start on a problem, except under ``--dry-run``),
builds the runner, the power decision, the uploader and the loop, and runs until SIGTERM
or SIGINT, which end a copy between chunks, unmount the card and leave the camera in
``camera.safe_state``; then it exits 0. ``--once`` runs one cycle and exits (0 when it
did not fail). ``--dry-run`` logs every command it would run (``would run: ...``) to
stdout and runs none: the printed lines are the plan.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from pathlib import Path

from common.notify import build_notifier
from node_agent.commands import CommandRunner
from node_agent.dashcam.preflight import preflight
from node_agent.dashcam.service import Dashcam
from node_agent.dashcam.wiring import build_dashcam, make_uploader, wire_dashcam_power
from node_agent.notify.alerts import AgentAlerts
from node_agent.power.monitor import PowerMonitor
from node_agent.power.policy import thresholds
from node_agent.power.preflight import preflight_problems
from node_agent.power.provider import make_provider
from node_agent.settings import AgentSettings, resolve_identity

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _setup_logging(log_path: Path | None, dry_run: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout if dry_run else sys.stderr)]
    if log_path is not None and not dry_run:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # A plain append handler: logrotate's copytruncate rotates it under our feet.
        handlers.append(logging.FileHandler(log_path, mode="a"))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)


def _node_id(settings: AgentSettings, dry_run: bool) -> str:
    """The node id; under dry-run nothing is created in the data folder."""
    if not dry_run:
        return resolve_identity(settings)[0]
    try:
        return settings.node_id or (settings.data_dir / "node_id").read_text().strip()
    except OSError:
        return socket.gethostname().split(".")[0][:40] or "dashcam"


async def _serve(dashcam: Dashcam, power: PowerMonitor, once: bool) -> int:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def on_signal(signum: int) -> None:
        log.info("%s: stopping the dashcam loop", signal.Signals(signum).name)
        dashcam.request_stop()  # a copy in progress ends between chunks
        stopped.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await power.poll_once()  # the first decision before the camera is switched
    power.start()
    await dashcam.start(loop=not once)
    failed = False
    if once:
        failed = (await dashcam.cycle()).last_error is not None
    else:
        await stopped.wait()
    await dashcam.stop()
    await power.stop()
    return 1 if failed else 0


def run_dashcam(settings: AgentSettings, dry_run: bool, once: bool = False) -> int:
    """Run the dashcam loop until SIGTERM (or one cycle with ``once``); the exit code."""
    dry = dry_run or settings.dashcam.dry_run
    _setup_logging(settings.dashcam.paths.log_path, dry)
    runner = CommandRunner(dry_run=dry)
    problems = [str(p) for p in preflight(settings.dashcam)]
    problems += preflight_problems(settings.power, runner)
    for p in problems:
        (log.warning if dry else log.error)("preflight: %s", p)
    if problems and not dry:
        print(
            "camfleet dashcam: not starting; fix the preflight problems above "
            "(--dry-run prints the plan anyway)",
            file=sys.stderr,
        )
        return 2
    node_id = _node_id(settings, dry)
    power = PowerMonitor(
        settings.power,
        thresholds(settings.power, settings.gates.min_battery_percent),
        make_provider(settings.power, runner),
        runner,
        None,  # a dashcam Pi has no recordings disk of its own to unmount
    )
    uploader = make_uploader(settings, runner, node_id)
    dashcam = build_dashcam(settings, node_id, runner, lambda: power.decision, uploader)
    wire_dashcam_power(dashcam, power)
    # The same alerts as in the agent: a failed backup or cycle, the battery's levels.
    alerts = AgentAlerts(build_notifier(settings.notifications, node_id))
    dashcam.on_problem = alerts.dashcam_problem
    power.on_level = alerts.power_level
    if dry:
        log.info("dry run: every command is logged as 'would run: ...' and none is run")
    try:
        code = asyncio.run(_serve(dashcam, power, once))
    finally:
        alerts.notifier.close()
    if dry:
        print("dry run: nothing was run or changed; the 'would run' lines above are the plan")
    return code
