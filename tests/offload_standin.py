"""A stand-in coordinator for the footage commands' own tests: a real HTTP server process.

``python -m tests.offload_standin CONFIG.json PORT`` serves the operator routes that
``camfleet offload``/``download`` call, from files on disk, with HTTP Range - and with the
misbehaviour a real coordinator will not produce on demand: ignoring Range, or dropping
the connection part-way through an answer, or sending it slowly. Every request is appended to the config's
``log`` (JSON lines) so a test can assert what was asked for, byte ranges included.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

RANGE = re.compile(r"^bytes=(\d+)-$")
CHUNK = 64 * 1024


def build(config: dict[str, Any]) -> FastAPI:
    app = FastAPI()
    log = Path(config["log"])
    recs: list[dict[str, Any]] = config["recordings"]
    drops_done: set[str] = set()

    def record(request: Request, **extra: Any) -> None:
        line = {"method": request.method, "path": request.url.path} | extra
        line["range"] = request.headers.get("range")
        with open(log, "a") as fh:
            fh.write(json.dumps(line) + "\n")

    def refused(request: Request) -> Response | None:
        if request.url.path == "/health":
            return None
        if request.headers.get("authorization") != f"Bearer {config['token']}":
            record(request)
            return JSONResponse(
                {"detail": "the token is not valid for this server", "code": "unauthorized"},
                status_code=401,
            )
        return None

    def serve(request: Request, path: Path, key: str, rec: dict[str, Any]) -> Response:
        data = path.read_bytes()
        m = RANGE.match(request.headers.get("range") or "")
        start = int(m.group(1)) if m and not rec.get("ignore_range") else 0
        if start >= len(data) and start > 0:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        drop = rec.get("drop_after") is not None and key not in drops_done
        drop_after = int(rec.get("drop_after") or 0)
        if drop:
            drops_done.add(key)

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            for i in range(0, len(body), CHUNK):
                block = body[i : i + CHUNK]
                if drop and sent + len(block) > drop_after:
                    yield block[: drop_after - sent]
                    raise ConnectionAbortedError("the stand-in drops this connection")
                sent += len(block)
                yield block
                if rec.get("chunk_delay_s"):
                    await asyncio.sleep(float(rec["chunk_delay_s"]))

        headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return StreamingResponse(chunks(), status_code=status, headers=headers)

    def find(node_id: str, name: str) -> dict[str, Any] | None:
        return next(
            (r for r in recs if r["wire"]["node_id"] == node_id and r["wire"]["file_name"] == name),
            None,
        )

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        return refused(request) or await call_next(request)

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/api/v1/sessions/{session_id}")
    async def session(request: Request, session_id: str) -> Response:
        record(request)
        if session_id not in config["sessions"]:
            return JSONResponse({"detail": f"no session {session_id}", "code": "x"}, 404)
        return JSONResponse({"session_id": session_id})

    @app.get("/api/v1/recordings")
    async def listing(request: Request, session_id: str | None = None) -> Response:
        record(request)
        wire = [r["wire"] for r in recs if session_id in (None, r["wire"]["session_id"])]
        return JSONResponse({"recordings": wire})

    @app.get("/api/v1/recordings/{rec_id}/file")
    async def archived(request: Request, rec_id: int) -> Response:
        record(request)
        rec = next(r for r in recs if r["wire"]["id"] == rec_id)
        return serve(request, Path(rec["archive_path"]), f"archive/{rec_id}", rec)

    @app.get("/api/v1/recordings/{rec_id}/lockview.jpg")
    async def archived_still(request: Request, rec_id: int) -> Response:
        record(request)
        return Response(b"\xff\xd8 archive still", media_type="image/jpeg")

    @app.get("/api/v1/nodes/{node_id}/recordings/{name}")
    async def relayed(request: Request, node_id: str, name: str) -> Response:
        record(request)
        rec = find(node_id, name)
        if rec is None:
            if name.endswith(".jpg"):
                return Response(b"\xff\xd8 node still", media_type="image/jpeg")
            return JSONResponse({"detail": f"no recording {name}", "code": "not_found"}, 404)
        return serve(request, Path(rec["node_path"]), f"node/{node_id}/{name}", rec)

    @app.post("/api/v1/nodes/{node_id}/recordings/{name}/confirm")
    async def confirm(request: Request, node_id: str, name: str) -> Response:
        body = await request.json()
        record(request, body=body)
        rec = find(node_id, name)
        if rec is None or body.get("sha256") != rec["wire"]["sha256"]:
            return JSONResponse({"detail": "checksum differs", "code": "conflict"}, 409)
        return JSONResponse({"file_name": name, "offloaded": True, "already": False})

    return app


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    uvicorn.run(build(config), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")


if __name__ == "__main__":
    main()
