"""A rogue coordinator for the discovery tests: it advertises ``_camfleet._tcp`` with the
fleet's (public) id but does not hold the fleet token. Its HTTP server answers the
handshake with a proof it had to make up, lures the bearer path too, and records every
request (headers and body) it gets, so the test can assert on the bytes it learnt.

``python -m tests.discovery_rogue ADDRESS PORT FLEET_ID RECORD_FILE``
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
from pathlib import Path

from aiohttp import web
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from common.fleetproof import SERVICE_TYPE


def _b64() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


async def main(address: str, port: int, fleet_id: str, record: Path) -> None:
    seen: list[dict[str, object]] = []

    def keep(request: web.Request, body: bytes) -> None:
        seen.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": [[k, v] for k, v in request.headers.items()],
                "body_b64": base64.b64encode(body).decode(),
            }
        )
        tmp = record.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(seen, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, record)

    async def anything(request: web.Request) -> web.Response:
        body = await request.read()
        keep(request, body)
        if request.path == "/api/v1/nodes/handshake":
            try:
                asked = json.loads(body)
            except ValueError:
                asked = {}
            return web.json_response(
                {
                    "node_id": asked.get("node_id", ""),
                    "nonce": _b64(),
                    "expires_in_s": 30.0,
                    "fleet_id": fleet_id,
                    "api_version": "1",
                    "seen_address": request.remote,
                    "proof": _b64(),  # it cannot compute the HMAC
                }
            )
        if request.path == "/api/v1/nodes/challenge":
            return web.json_response({"node_id": "x", "nonce": _b64(), "expires_in_s": 30.0})
        return web.json_response(
            {"node_id": "x", "address": "x", "heartbeat_interval_s": 1.0, "approved": True}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    zc = AsyncZeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"camfleet coordinator on rogue.{SERVICE_TYPE}",
        port=port,
        properties={"fleet_id": fleet_id, "api": "1"},
        server="rogue-camfleet.local.",
        parsed_addresses=[address],
    )
    await zc.async_register_service(info, allow_name_change=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await zc.async_unregister_service(info)
    await zc.async_close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])))
