"""Frames from FFmpeg's V4L2 input made into the recorder's frames, and its open errors
made into messages a person can act on."""

from __future__ import annotations

import errno
from fractions import Fraction

import av

from node_agent.camera.protocol import CameraError


def to_yuv420p(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` as a new yuv420p frame at ``width`` x ``height``, in memory of its own
    and without the decoder's pts and time base, like every backend's frames.

    Always a copy: a raw frame straight from the decoder can point into the driver's
    mmap'd buffer, which FFmpeg unmaps when the device is closed.
    """
    if frame.format.name == "yuv420p" and frame.width == width and frame.height == height:
        return av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
    out = frame.reformat(width=width, height=height, format="yuv420p")
    out.pts = None
    # A time base of 0 is PyAV's "unset": the encoder then takes the recorder's pts as
    # they are. Left at the decoder's 1/1000000, it would rescale them (to 0 at 30 fps).
    out.time_base = Fraction(0, 1)
    return out


def copy_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """A frame of its own: the recorder may be encoding (and re-stamping) the original."""
    return av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")


def error_number(err: BaseException) -> int | None:
    """The errno an FFmpeg or OS error carries, if any."""
    value = getattr(err, "errno", None)
    return value if isinstance(value, int) else None


def error_text(err: BaseException) -> str:
    """The OS's words for an error, else its own message."""
    return str(getattr(err, "strerror", None) or err)


class OpenFailed(CameraError):
    """av.open failed; ``fatal`` when trying another input format cannot help."""

    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


def open_error(where: str, fmt: str | None, err: BaseException) -> OpenFailed:
    """A readable error for a failed av.open."""
    code = error_number(err)
    as_fmt = f" as {fmt}" if fmt else ""
    fatal = True
    if code == errno.ENOENT:
        text = f"{where} does not exist (is the camera plugged in?)"
    elif code == errno.EACCES:
        text = f"{where}: permission denied (add the agent's user to the video group)"
    elif code == errno.EBUSY:
        text = f"{where} is busy: another program is using it (`fuser {where.split()[0]}`)"
    elif code in (errno.ENODEV, errno.EIO):
        text = f"{where} went away ({error_text(err)}; unplugged?)"
    elif isinstance(err, av.error.ExitError):
        text = f"{where} delivered no frame{as_fmt} while opening (time-out)"
        fatal = False
    else:
        text = f"{where} refused{as_fmt}: {error_text(err)}"
        fatal = False
    return OpenFailed(text, fatal)
