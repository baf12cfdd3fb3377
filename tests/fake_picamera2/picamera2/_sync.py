"""The fake camera's side of libcamera's software camera sync (``rpi.sync``).

Not part of the real picamera2. It follows libcamera's algorithm
(src/ipa/rpi/controller/rpi/sync.cpp): the server counts frames and, every
``sync_period`` frames, sends one UDP packet (frame duration, its frame's wall-clock
time, the wall-clock "ready time" ``SyncFrames`` frames after it began), all in µs; a
client reads every packet waiting, shortens one frame so that its frames start when the
server's do, and both report ``SyncReady`` from the first frame at or after the ready
time, and ``SyncTimer`` (ready time minus this frame's time, µs; a client only once it
has heard the server). libcamera multicasts to 239.255.255.250:10000; the fake sends
unicast to 127.0.0.1 on ``rig.sync_port``, so tests on one machine need no multicast.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

PAYLOAD = struct.Struct("=IQQ")  # frameDuration, wallClockFrameTimestamp, wallClockReadyTime


class SyncAlgorithm:
    """One camera's sync state, fed each frame's wall-clock time."""

    def __init__(self, mode: int, ready_frame: int, port: int, sync_period: int) -> None:
        self.mode = mode  # 1 server, 2 client
        self.ready_frame = ready_frame
        self.sync_period = sync_period
        self.frame_count = 0
        self.ready = False
        self.seen_packet = False
        self.server_ready_us = 0
        self.addr = ("127.0.0.1", port)
        self.sock: socket.socket | None = None

    def _open(self) -> socket.socket | None:
        """As libcamera's initialiseSocket, tried on each frame until it works."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if self.mode == 2:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(self.addr)
            except OSError:  # libcamera logs "Unable to bind client socket" and goes on
                sock.close()
                return None
            sock.setblocking(False)
        self.sock = sock
        if self.mode == 2:
            self._drain()  # stale packets of an earlier run
        return sock

    def _drain(self) -> list[bytes]:
        packets = []
        while self.sock is not None:
            try:
                packets.append(self.sock.recv(64))
            except BlockingIOError:
                break
        return packets

    def process(self, wall_ns: int, period_us: int) -> tuple[dict[str, Any], int]:
        """This frame's sync metadata, and how much (ns) to shorten the next frame by."""
        if self.sock is None and self._open() is None:
            return {}, 0
        assert self.sock is not None
        wall_us = wall_ns // 1000
        shorten_ns = 0
        md: dict[str, Any] = {}
        if self.mode == 1:
            ready_us = wall_us + (self.ready_frame - self.frame_count) * period_us
            if self.frame_count and self.frame_count % self.sync_period == 0:
                self.sock.sendto(PAYLOAD.pack(period_us, wall_us, ready_us), self.addr)
            timer = ready_us - wall_us
            if not self.ready and wall_us + period_us // 2 > ready_us:
                self.ready = True
            md["SyncTimer"] = timer
        else:
            for packet in self._drain():
                if len(packet) != PAYLOAD.size:
                    continue
                duration, server_us, self.server_ready_us = PAYLOAD.unpack(packet)
                self.seen_packet = True
                delta = wall_us - server_us
                periods = (delta + duration // 2) // duration
                correction = delta - periods * duration
                if abs(correction) >= 50:  # libcamera's default min_adjustment (µs)
                    shorten_ns = correction * 1000
            if self.seen_packet:
                md["SyncTimer"] = self.server_ready_us - wall_us
                if not self.ready and wall_us + period_us // 2 > self.server_ready_us:
                    self.ready = True
        md["SyncReady"] = self.ready
        self.frame_count += 1
        return md, shorten_ns

    def close(self) -> None:
        """Give the socket back."""
        if self.sock is not None:
            self.sock.close()
