"""The clients benchmark 6 compares, each behind one small interface: raw streams,
``AgentClient``, aiohttp and httpx (shared and per node), with the settings tried."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiohttp
import httpx
from yarl import URL

from app.fleet.client import AgentClient, NodeAddress
from bench.common import (
    RawConnection,
    command_id,
)
from node_agent.schemas import StartRequest

STATUS_PATH = "/api/v1/status"

START_PATH = "/api/v1/recording/start"

STOP_PATH = "/api/v1/recording/stop"

SCHEDULE_AHEAD_NS = 60_000_000_000  # nothing records before the cancelling stop

REQUEST_TIMEOUT_S = 60.0

RAW = "raw"

OURS = "AgentClient"

AIOHTTP = "aiohttp"

HTTPX_SHARED = "httpx shared"

HTTPX_PER_NODE = "httpx per node"

# The aiohttp setting the main rows use: the fastest found while tuning (see TUNING).
AIOHTTP_BEST = "limit=0, limit_per_host=4, prebuilt URLs"

HTTPX_SHARED_BEST = "Limits(max_connections=None, max_keepalive_connections=None)"

MAIN_CLIENTS = (RAW, AIOHTTP, HTTPX_SHARED, HTTPX_PER_NODE, OURS)


T = TypeVar("T")


async def gather_all(*aws: Awaitable[T]) -> list[T]:
    """Every request to its end, then the first failure raised: a plain gather would raise
    while the rest are still under way, and a start that lands after the bench's cancel
    leaves that agent armed for the next client (seen: 409 at N = 200)."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return cast(list[T], results)


def _start_body(session: str, node: NodeAddress, start_at_ns: int) -> dict[str, Any]:
    return {
        "session_id": session,
        "command_id": command_id(session, "start", node.node_id),
        "start_at_ns": start_at_ns,
    }


class Client(abc.ABC):
    """One way of fanning a call out to every node; answers are HTTP status codes."""

    name = ""
    setting = ""

    async def open(self, nodes: Sequence[NodeAddress]) -> None:
        self.nodes = list(nodes)

    @abc.abstractmethod
    async def status_all(self) -> list[int]:
        """``GET /api/v1/status`` on every node at once."""

    @abc.abstractmethod
    async def start_all(self, session: str, start_at_ns: int) -> list[int]:
        """A scheduled start on every node at once."""

    async def aclose(self) -> None:
        return None


class RawClient(Client):
    """``bench.common.RawConnection``: one persistent asyncio stream per node."""

    name = RAW
    setting = "one asyncio stream per node"

    async def open(self, nodes: Sequence[NodeAddress]) -> None:
        await super().open(nodes)
        self.conns = [RawConnection(n.host, n.port, n.api_token) for n in nodes]

    async def status_all(self) -> list[int]:
        answers = await gather_all(*(c.request("GET", STATUS_PATH) for c in self.conns))
        return [status for status, _ in answers]

    async def start_all(self, session: str, start_at_ns: int) -> list[int]:
        answers = await gather_all(
            *(
                c.request("POST", START_PATH, _start_body(session, n, start_at_ns))
                for c, n in zip(self.conns, self.nodes, strict=True)
            )
        )
        return [status for status, _ in answers]

    async def stop_all(self, session: str) -> list[tuple[int, bytes]]:
        """Cancel ``session`` everywhere (not timed; used after every measured start)."""
        return await gather_all(
            *(
                c.request(
                    "POST",
                    STOP_PATH,
                    {"session_id": session, "command_id": command_id(session, "stop", n.node_id)},
                )
                for c, n in zip(self.conns, self.nodes, strict=True)
            )
        )

    async def aclose(self) -> None:
        for c in self.conns:
            await c.aclose()


class OursClient(Client):
    """The coordinator's own ``AgentClient.fan_out``, which parses and validates each answer."""

    name = OURS
    setting = "app.fleet.client.AgentClient (validates into pydantic)"

    async def open(self, nodes: Sequence[NodeAddress]) -> None:
        await super().open(nodes)
        self.client = AgentClient(timeout_s=REQUEST_TIMEOUT_S)

    async def status_all(self) -> list[int]:
        calls = await self.client.fan_out(self.nodes, self.client.status)
        return [(c.status_code or 0) if c.ok else 0 for c in calls]

    async def start_all(self, session: str, start_at_ns: int) -> list[int]:
        client = self.client
        calls = await client.fan_out(
            self.nodes,
            lambda n: client.start(
                n, StartRequest.model_validate(_start_body(session, n, start_at_ns))
            ),
        )
        return [(c.status_code or 0) if c.ok else 0 for c in calls]

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass(frozen=True)
class AiohttpSetting:
    """One way to configure aiohttp's connector (and whether URLs are built once)."""

    label: str
    connector: dict[str, Any]
    prebuilt_urls: bool = False


AIOHTTP_SETTINGS = (
    AiohttpSetting("TCPConnector() defaults (limit=100)", {}),
    AiohttpSetting("limit=0", {"limit": 0}),
    AiohttpSetting("limit=0, limit_per_host=4", {"limit": 0, "limit_per_host": 4}),
    AiohttpSetting(
        "limit=0, limit_per_host=4, use_dns_cache=False",
        {"limit": 0, "limit_per_host": 4, "use_dns_cache": False},
    ),
    AiohttpSetting(
        AIOHTTP_BEST,
        {"limit": 0, "limit_per_host": 4, "ttl_dns_cache": None},
        prebuilt_urls=True,
    ),
)


class AiohttpClient(Client):
    """One shared ``aiohttp.ClientSession`` for every node."""

    name = AIOHTTP

    def __init__(self, setting: AiohttpSetting) -> None:
        self.conf = setting
        self.setting = setting.label

    async def open(self, nodes: Sequence[NodeAddress]) -> None:
        await super().open(nodes)
        connector = aiohttp.TCPConnector(**self.conf.connector)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            # The bench environment has no proxy; reading it per request would cost.
            trust_env=False,
        )
        self.headers = [{"Authorization": f"Bearer {n.api_token}"} for n in nodes]
        if self.conf.prebuilt_urls:
            # yarl parses a str URL on every request; a URL object built once skips that.
            self.status_urls: list[str | URL] = [
                URL.build(scheme="http", host=n.host, port=n.port, path=STATUS_PATH, encoded=True)
                for n in nodes
            ]
            self.start_urls: list[str | URL] = [
                URL.build(scheme="http", host=n.host, port=n.port, path=START_PATH, encoded=True)
                for n in nodes
            ]
        else:
            self.status_urls = [f"http://{n.host}:{n.port}{STATUS_PATH}" for n in nodes]
            self.start_urls = [f"http://{n.host}:{n.port}{START_PATH}" for n in nodes]

    async def _get(self, url: str | URL, headers: dict[str, str]) -> int:
        async with self.session.get(url, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def _post(self, url: str | URL, headers: dict[str, str], body: object) -> int:
        async with self.session.post(url, headers=headers, json=body) as resp:
            await resp.read()
            return resp.status

    async def status_all(self) -> list[int]:
        return await gather_all(
            *(self._get(u, h) for u, h in zip(self.status_urls, self.headers, strict=True))
        )

    async def start_all(self, session: str, start_at_ns: int) -> list[int]:
        return await gather_all(
            *(
                self._post(u, h, _start_body(session, n, start_at_ns))
                for u, h, n in zip(self.start_urls, self.headers, self.nodes, strict=True)
            )
        )

    async def aclose(self) -> None:
        await self.session.close()


class HttpxSharedClient(Client):
    """One ``httpx.AsyncClient`` for every node."""

    name = HTTPX_SHARED

    def __init__(self, limits: httpx.Limits, label: str) -> None:
        self.limits = limits
        self.setting = label

    async def open(self, nodes: Sequence[NodeAddress]) -> None:
        await super().open(nodes)
        self.client = httpx.AsyncClient(
            limits=self.limits, timeout=REQUEST_TIMEOUT_S, trust_env=False
        )
        self.headers = [{"Authorization": f"Bearer {n.api_token}"} for n in nodes]

    async def _get(self, node: NodeAddress, headers: dict[str, str]) -> int:
        resp = await self.client.get(
            f"http://{node.host}:{node.port}{STATUS_PATH}", headers=headers
        )
        return resp.status_code

    async def _post(self, node: NodeAddress, headers: dict[str, str], body: object) -> int:
        url = f"http://{node.host}:{node.port}{START_PATH}"
        resp = await self.client.post(url, headers=headers, json=body)
        return resp.status_code

    async def status_all(self) -> list[int]:
        return await gather_all(
            *(self._get(n, h) for n, h in zip(self.nodes, self.headers, strict=True))
        )

    async def start_all(self, session: str, start_at_ns: int) -> list[int]:
        return await gather_all(
            *(
                self._post(n, h, _start_body(session, n, start_at_ns))
                for n, h in zip(self.nodes, self.headers, strict=True)
            )
        )

    async def aclose(self) -> None:
        await self.client.aclose()


class HttpxPerNodeClient(Client):
    """One ``httpx.AsyncClient`` per node (its pool then holds one connection)."""

    name = HTTPX_PER_NODE
    setting = "AsyncClient(base_url=node) each, Limits(max_connections=4), trust_env=False"

    async def open(self, nodes: Sequence[NodeAddress]) -> None:
        await super().open(nodes)
        self.clients = [
            httpx.AsyncClient(
                base_url=f"http://{n.host}:{n.port}",
                headers={"Authorization": f"Bearer {n.api_token}"},
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
                timeout=REQUEST_TIMEOUT_S,
                trust_env=False,
            )
            for n in nodes
        ]

    async def status_all(self) -> list[int]:
        answers = await gather_all(*(c.get(STATUS_PATH) for c in self.clients))
        return [r.status_code for r in answers]

    async def start_all(self, session: str, start_at_ns: int) -> list[int]:
        answers = await gather_all(
            *(
                c.post(START_PATH, json=_start_body(session, n, start_at_ns))
                for c, n in zip(self.clients, self.nodes, strict=True)
            )
        )
        return [r.status_code for r in answers]

    async def aclose(self) -> None:
        for c in self.clients:
            await c.aclose()


def main_clients() -> list[Client]:
    """The clients of the main rows, raw first."""
    best = next(s for s in AIOHTTP_SETTINGS if s.label == AIOHTTP_BEST)
    return [
        RawClient(),
        AiohttpClient(best),
        HttpxSharedClient(
            httpx.Limits(max_connections=None, max_keepalive_connections=None), HTTPX_SHARED_BEST
        ),
        HttpxPerNodeClient(),
        OursClient(),
    ]


def tuning_clients() -> list[Client]:
    """The settings tried on the status fan-out at the tuning size."""
    out: list[Client] = [AiohttpClient(s) for s in AIOHTTP_SETTINGS]
    out.append(HttpxSharedClient(httpx.Limits(), "httpx.Limits() defaults (100, keep-alive 20)"))
    out.append(
        HttpxSharedClient(
            httpx.Limits(max_connections=None, max_keepalive_connections=None), HTTPX_SHARED_BEST
        )
    )
    return out
