"""Arming a recording: open the first profile's encoder that works, then the camera.

Each failure becomes the error its route answers with (409 storage or camera gate,
503 no encoder), carrying the note the status page keeps as the last error.
"""

from __future__ import annotations

from pathlib import Path

from node_agent.camera.framesync import FrameSyncing
from node_agent.camera.protocol import BackendFactory, CameraBackend, CameraError
from node_agent.errors import GateRefused, RecorderFailure, RecordingConflict
from node_agent.recorder.profiles import Profiles
from node_agent.recorder.writer import EncoderUnavailable, Mp4Writer
from node_agent.schemas import GateResult
from node_agent.settings import CameraSettings, Profile


class ArmingFailed(Exception):
    """Marker for arming failures the status page remembers (``note``)."""

    note: str


class NoEncoder(RecorderFailure, ArmingFailed):
    """No configured profile could be encoded."""

    def __init__(self, err: EncoderUnavailable) -> None:
        super().__init__(f"no configured profile can be encoded: {err}")
        self.note = str(err)


class CameraRefused(GateRefused, ArmingFailed):
    """The camera did not open: the camera gate refuses."""

    def __init__(self, err: CameraError) -> None:
        super().__init__([GateResult(gate="camera", ok=False, reason=str(err))])
        self.note = f"camera: {err}"


def open_writer(
    profiles: Profiles, camera: CameraSettings, path: Path
) -> tuple[Profile, int, Mp4Writer]:
    """The first profile whose encoder opens (falling back down the list), its bitrate
    and the open writer."""
    while True:
        profile = profiles.current
        bitrate = profiles.bitrate(profile)
        try:
            writer = Mp4Writer(
                path,
                profile,
                bitrate,
                gop_frames=max(1, round(profile.fps * camera.gop_s)),
                extra_options=camera.encoder_options,
                audio=camera if camera.audio else None,
            )
            return profile, bitrate, writer
        except FileExistsError as err:
            raise RecordingConflict(f"{path.name} already exists on this node") from err
        except OSError as err:
            reason = f"cannot create {path.name}: {err}"
            raise GateRefused([GateResult(gate="storage", ok=False, reason=reason)]) from err
        except EncoderUnavailable as err:
            if not profiles.fall_back(str(err)):
                raise NoEncoder(err) from err


def open_camera(
    factory: BackendFactory,
    camera: CameraSettings,
    profile: Profile,
    cam_id: str,
    frame_sync: tuple[str, int | None] = ("off", None),
) -> CameraBackend:
    """The configured camera, opened at ``profile``'s size and rate; with ``frame_sync``
    (mode, server's ready frames) asking a backend that can for libcamera's sync."""
    try:
        backend = factory(
            camera.source, profile.width, profile.height, profile.fps, cam_id, device=camera.device
        )
        mode, frames = frame_sync
        if mode != "off" and isinstance(backend, FrameSyncing):
            backend.configure_frame_sync(mode, frames)
        backend.open()
    except CameraError as err:
        raise CameraRefused(err) from err
    return backend
