"""A jittery network in one process: delaying TCP proxies and UDP relays.

``python -m bench.jitter --seed S --delay-ms D --jitter-ms J [--clean] --tcp LHOST:LPORT:THOST:TPORT ... --udp ...``

The kernel's ``netem`` is not available here, so the delay is added in user space. Each
chunk a TCP proxy reads (each direction of each connection on its own) is held for
``max(0, D + U(-J, +J))`` ms before it is written on, and never overtakes the chunk
before it (TCP keeps order). Each UDP datagram is held for its own draw, either way, so
datagrams may overtake each other as on a radio link; the relay keeps one upstream
socket per client address, so replies find their way back. Every route has its own
random stream from ``S``. With ``--clean`` nothing is delayed until SIGUSR1 arrives (the
bench checks the clocks on a clean path first). Prints ``ready`` once every port is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import random
import signal
import sys
from dataclasses import dataclass
from typing import cast


@dataclass
class Delay:
    """The delay law of one route; ``on`` False passes everything at once."""

    delay_ms: float
    jitter_ms: float
    rng: random.Random
    on: bool = True

    def draw_s(self) -> float:
        if not self.on:
            return 0.0
        return max(0.0, self.delay_ms + self.rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1e3


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, law: Delay) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    last_due = 0.0
    try:
        while data := await reader.read(65536):
            last_due = max(last_due, loop.time() + law.draw_s())
            queue.put_nowait((last_due, data))
        queue.put_nowait((last_due, b""))
        await sender
        with contextlib.suppress(OSError):
            writer.write_eof()
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        if not sender.done():
            sender.cancel()


async def serve_tcp(listen: tuple[str, int], target: tuple[str, int], law: Delay) -> asyncio.Server:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*target)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_pump(client_r, up_w, law), _pump(up_r, client_w, law))
        finally:
            for w in (client_w, up_w):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()

    return await asyncio.start_server(handle, *listen)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: _Relay, client: tuple[str, int]) -> None:
        self.relay, self.client = relay, client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.later(lambda: self.relay.sendto_client(data, self.client))


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], law: Delay) -> None:
        self.target, self.law = target, law
        self.transport: asyncio.DatagramTransport | None = None
        self.upstreams: dict[tuple[str, int], asyncio.DatagramTransport] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def later(self, action: object) -> None:
        assert callable(action)
        asyncio.get_running_loop().call_later(self.law.draw_s(), action)

    def sendto_client(self, data: bytes, client: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, client)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self._forward(data, addr))

    async def _forward(self, data: bytes, client: tuple[str, int]) -> None:
        up = self.upstreams.get(client)
        if up is None:
            up, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Upstream(self, client), remote_addr=self.target
            )
            self.upstreams[client] = up
        self.later(lambda: up.sendto(data))


def _route(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    lhost, lport, thost, tport = text.rsplit(":", 3)
    return (lhost, int(lport)), (thost, int(tport))


async def _main(args: argparse.Namespace) -> None:
    laws: list[Delay] = []

    def law(kind: str, index: int) -> Delay:
        d = Delay(args.delay_ms, args.jitter_ms, random.Random(f"{args.seed}:{kind}:{index}"))
        d.on = not args.clean
        laws.append(d)
        return d

    loop = asyncio.get_running_loop()
    servers = [await serve_tcp(*_route(r), law("tcp", i)) for i, r in enumerate(args.tcp or [])]
    for i, r in enumerate(args.udp or []):
        listen, target = _route(r)
        await loop.create_datagram_endpoint(
            functools.partial(_Relay, target, law("udp", i)), listen
        )

    def jitter_on() -> None:
        for d in laws:
            d.on = True
        print("jitter on", flush=True)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, jitter_on)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jitter", description=__doc__)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--jitter-ms", type=float, default=20.0)
    parser.add_argument("--clean", action="store_true", help="no delay until SIGUSR1")
    parser.add_argument("--tcp", action="append", help="LHOST:LPORT:THOST:TPORT")
    parser.add_argument("--udp", action="append", help="LHOST:LPORT:THOST:TPORT")
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
