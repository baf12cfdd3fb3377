"""Frame-level sync between cameras: libcamera's software camera sync, as the recorder asks it.

On a Raspberry Pi, libcamera's sync algorithm (``rpi.sync``) lines up the frame starts
of several cameras: one server broadcasts its frame timing over UDP, clients lengthen
or shorten a frame until theirs start at the same wall-clock instants, and all of them
report ``SyncReady`` from the same agreed frame on. It works on wall-clock time, so it
needs the clocks chrony keeps; it then removes the up-to-one-frame phase difference a
scheduled start alone leaves.

This module is the pure part: which mode a node runs (``resolve_mode``), how many frames
the server waits before declaring readiness (``ready_frames``), and the protocol a
backend that can sync offers (``FrameSyncing``; only the picamera2 backend does).
"""

from __future__ import annotations

import math
import threading
from typing import Protocol, runtime_checkable

from node_agent.schemas import FrameSyncReport
from node_agent.sync.settings import SyncSettings

# libcamera's SyncFrames control accepts up to this many frames.
MAX_SYNC_FRAMES = 100_000
# Time the camera needs between being configured and delivering its first frame (about
# 0.2 s on a Pi 5; more on a Pi 4): the server's frame count begins after it.
STARTUP_ALLOWANCE_S = 0.3
# A start "now" still gives clients this long to hear the server.
NOW_READY_S = 1.0


def resolve_mode(frame_sync: str, sync: SyncSettings, cam_id: str) -> str:
    """``camera.frame_sync`` as this node runs it: off, server or client.

    ``auto`` follows the chrony role: the sync master's camera is the server (its clock
    is the fleet's), every other camera a client.
    """
    if frame_sync in ("off", "server", "client"):
        return frame_sync
    if sync.role == "none":
        return "off"
    master = sync.role == "master" or (sync.role == "auto" and cam_id == sync.master_cam_id)
    return "server" if master else "client"


def ready_frames(lead_ns: int, fps: float) -> int:
    """Frames the server counts before SyncReady, so that readiness comes just before a
    start ``lead_ns`` away (or about a second after a start "now")."""
    lead_s = lead_ns / 1e9 if lead_ns > 0 else NOW_READY_S + STARTUP_ALLOWANCE_S
    frames = math.floor((lead_s - STARTUP_ALLOWANCE_S) * fps)
    return min(max(1, frames), MAX_SYNC_FRAMES)


@runtime_checkable
class FrameSyncing(Protocol):
    """A camera backend that can run libcamera's software camera sync."""

    def configure_frame_sync(self, mode: str, ready_frames: int | None) -> None:
        """Ask for sync ``mode`` (server or client) when the camera opens; the server
        declares readiness after ``ready_frames`` frames."""

    def await_frame_sync(self, until_wall_ns: int, cancel: threading.Event) -> FrameSyncReport:
        """Wait for SyncReady until ``until_wall_ns`` (wall clock); what happened."""


def unsupported(mode: str, backend_name: str) -> FrameSyncReport:
    """The report for a backend that has no frame sync (synthetic, V4L2)."""
    return FrameSyncReport(
        mode=mode,
        ready=False,
        error=f"camera.frame_sync is {mode} but the {backend_name} camera has no libcamera "
        "sync (only the Pi camera through picamera2 has)",
    )
