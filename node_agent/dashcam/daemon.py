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

from node_agent.commands import CommandRunner
from node_agent.dashcam.preflight import preflight
from node_agent.dashcam.service import Dashcam
from node_agent.dashcam.wiring import build_dashcam, make_uploader, policy_reader
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


async def _serve(dashcam: Dashcam, once: bool) -> int:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def on_signal(signum: int) -> None:
        log.info("%s: stopping the dashcam loop", signal.Signals(signum).name)
        dashcam.request_stop()  # a copy in progress ends between chunks
        stopped.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await dashcam.start(loop=not once)
    failed = False
    if once:
        failed = (await dashcam.cycle()).last_error is not None
    else:
        await stopped.wait()
    await dashcam.stop()
    return 1 if failed else 0


def run_dashcam(settings: AgentSettings, dry_run: bool, once: bool = False) -> int:
    """Run the dashcam loop until SIGTERM (or one cycle with ``once``); the exit code."""
    dry = dry_run or settings.dashcam.dry_run
    _setup_logging(settings.dashcam.paths.log_path, dry)
    problems = preflight(settings.dashcam)
    for p in problems:
        (log.warning if dry else log.error)("preflight: %s", p)
    if problems and not dry:
        print(
            "camfleet dashcam: not starting; fix the preflight problems above "
            "(--dry-run prints the plan anyway)",
            file=sys.stderr,
        )
        return 2
    runner = CommandRunner(dry_run=dry)
    power = policy_reader(settings, runner)
    dashcam = build_dashcam(
        settings, _node_id(settings, dry), runner, power, make_uploader(settings, runner)
    )
    if dry:
        log.info("dry run: every command is logged as 'would run: ...' and none is run")
    code = asyncio.run(_serve(dashcam, once))
    if dry:
        print("dry run: nothing was run or changed; the 'would run' lines above are the plan")
    return code
