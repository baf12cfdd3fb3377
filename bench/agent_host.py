"""Many node agent apps in one process: ``python -m bench.agent_host --count K --base-port P ...``.

The fan-out benchmark needs hundreds of agents on a small machine. A real agent is
one process; here K agent apps (``node_agent.main.create_app``, each with its own data
folder and port P+i, all sharing the token T) are served by K ``uvicorn.Server``
instances in ONE asyncio loop. The apps are the real ones, so a start arms a real
recorder (camera and encoder opened, thread waiting for start_at).

Signals: ``uvicorn.Server.serve()`` (0.54) installs its own SIGINT/SIGTERM handler for
the duration of ``serve()``, and on the way out restores the previous handler and
re-raises the signal it caught. With K servers in one loop only the last one to start
hears SIGTERM; the others learn of it one by one as each restores and re-raises, and
the first server finally re-raises it into the default handler, which kills the
process before ``asyncio.gather`` returns (tried: exit status 143). So this host turns
``capture_signals`` off and handles SIGTERM/SIGINT itself: every server gets
``should_exit = True`` at once, all shut down (lifespans included) together, and the
process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from node_agent.main import create_app
from node_agent.settings import AgentSettings, CameraSettings, GateSettings

NO_CHRONYC = "/nonexistent/camfleet-bench/chronyc"


class HostedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the host."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def agent_settings(
    index: int, base_port: int, data_dir: Path, token: str, width: int, height: int, fps: float
) -> AgentSettings:
    """Settings of hosted agent ``index``: its own folder and port, the shared token."""
    return AgentSettings(
        node_id=f"host-agent-{base_port + index}",
        cam_id=f"CAM_{index:03d}",
        host="127.0.0.1",
        port=base_port + index,
        data_dir=data_dir / f"agent-{index:03d}",
        api_token=SecretStr(token),
        chronyc_path=NO_CHRONYC,
        clock_poll_interval_s=3600,
        gates=GateSettings(clock_policy="warn"),  # no chronyd here: the clock gate warns
        status_file=None,  # hundreds of stand-ins in one process: no status file (nor thread)
        # One encoder thread each: a host stands in for many nodes, and x264's own thread
        # pool per armed encoder (hundreds per process here) would make the host, not the
        # command path, the thing measured. A real node has one encoder and all its cores.
        camera=CameraSettings(
            source="synthetic",
            width=width,
            height=height,
            fps=fps,
            encoder_options={"libx264": {"threads": "1"}},
        ),
    )


async def serve_all(servers: list[HostedServer]) -> None:
    """Serve every server in this loop until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_host", description=__doc__)
    parser.add_argument("--count", type=int, required=True, help="how many agent apps")
    parser.add_argument("--base-port", type=int, required=True, help="agent i listens on P+i")
    parser.add_argument("--data-dir", type=Path, required=True, help="agent i uses D/agent-i")
    parser.add_argument("--token", required=True, help="bearer token of every agent")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args(argv)

    servers = []
    for i in range(args.count):
        settings = agent_settings(
            i, args.base_port, args.data_dir, args.token, args.width, args.height, args.fps
        )
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            # The bench keeps one warm connection per agent and client; uvicorn's default
            # 5 s would close those that sit idle while the other clients take their turn
            # on a loaded machine (a raw round then read EOF), as a polling coordinator's
            # would not be.
            timeout_keep_alive=600,
        )
        servers.append(HostedServer(config))
    logging.getLogger(__name__).warning(
        "hosting %d agents on ports %d-%d",
        args.count,
        args.base_port,
        args.base_port + args.count - 1,
    )
    asyncio.run(serve_all(servers))
    # A server that could not bind exits its serve() early; count that as a failure.
    failed = [s.config.port for s in servers if not s.started]
    if failed:
        print(f"agent_host: {len(failed)} agents never started: {failed[:10]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
