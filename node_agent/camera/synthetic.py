"""A synthetic camera: a moving test pattern with the frame counter and capture time burned in.

Frames are built directly in YUV 4:2:0 so that generating them costs far less than
encoding them; the recorder paces and encodes them exactly like real camera frames.
"""

from __future__ import annotations

import threading
import time
import zlib

import av
import numpy as np
import numpy.typing as npt

from node_agent.camera.protocol import CapturedFrame

# A 3x5 pixel font: enough to read "F000123 08:50:01.234" off a frame.
_GLYPHS = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ":": ("000", "010", "000", "010", "000"),
    ".": ("000", "000", "000", "000", "010"),
    " ": ("000", "000", "000", "000", "000"),
    "-": ("000", "000", "111", "000", "000"),
    "_": ("000", "000", "000", "000", "111"),
    "A": ("010", "101", "111", "101", "101"),
    "B": ("110", "101", "110", "101", "110"),
    "C": ("011", "100", "100", "100", "011"),
    "D": ("110", "101", "101", "101", "110"),
    "E": ("111", "100", "110", "100", "111"),
    "F": ("111", "100", "110", "100", "100"),
    "G": ("011", "100", "101", "101", "011"),
    "H": ("101", "101", "111", "101", "101"),
    "I": ("111", "010", "010", "010", "111"),
    "J": ("001", "001", "001", "101", "010"),
    "K": ("101", "101", "110", "101", "101"),
    "L": ("100", "100", "100", "100", "111"),
    "M": ("101", "111", "111", "101", "101"),
    "N": ("110", "101", "101", "101", "101"),
    "O": ("010", "101", "101", "101", "010"),
    "P": ("110", "101", "110", "100", "100"),
    "Q": ("010", "101", "101", "110", "011"),
    "R": ("110", "101", "110", "101", "101"),
    "S": ("011", "100", "010", "001", "110"),
    "T": ("111", "010", "010", "010", "010"),
    "U": ("101", "101", "101", "101", "111"),
    "V": ("101", "101", "101", "101", "010"),
    "W": ("101", "101", "111", "111", "101"),
    "X": ("101", "101", "010", "101", "101"),
    "Y": ("101", "101", "010", "010", "010"),
    "Z": ("111", "001", "010", "100", "111"),
}
_GLYPH_BITS = {
    ch: np.array([[c == "1" for c in row] for row in rows], dtype=bool)
    for ch, rows in _GLYPHS.items()
}


def render_text(text: str, scale: int) -> npt.NDArray[np.bool_]:
    """A boolean bitmap of ``text``, scaled up; characters outside the font are blanks."""
    cols = []
    for ch in text.upper():
        cols.append(_GLYPH_BITS.get(ch, _GLYPH_BITS[" "]))
        cols.append(np.zeros((5, 1), dtype=bool))
    bitmap = np.hstack(cols) if cols else np.zeros((5, 0), dtype=bool)
    return np.kron(bitmap, np.ones((scale, scale), dtype=bool)).astype(bool)


def overlay_label(index: int, capture_ns: int, camera: str = "") -> str:
    """The text burned into a frame: camera, counter and UTC capture time to the ms."""
    secs, ns = divmod(capture_ns, 1_000_000_000)
    hms = time.strftime("%H:%M:%S", time.gmtime(secs))
    prefix = f"{camera} " if camera else ""
    return f"{prefix}F{index:06d} {hms}.{ns // 1_000_000:03d}"


class SyntheticCamera:
    """Generated frames paced in real time; the default camera off a Pi and in every test."""

    name = "synthetic"

    def __init__(self, width: int, height: int, fps: float = 30.0, camera: str = "") -> None:
        self.width = width
        self.height = height
        self.fps = fps
        self.camera = camera
        # Each camera's pattern starts at its own phase, so two cameras started at the
        # same instant do not produce identical files.
        self._phase = zlib.crc32(camera.encode()) % 256
        self._base: npt.NDArray[np.uint8] | None = None
        self._scale = max(1, height // 90)
        self._period_ns = 1e9 / fps
        self._t0_wall = 0
        self._t0_mono: int | None = None
        self._next = 0
        self._opened_mono = time.monotonic_ns()

    def open(self) -> None:
        """Precompute the static part of the pattern."""
        yy, xx = np.mgrid[0 : self.height, 0 : self.width]
        self._base = ((xx // 2 + yy // 2) % 256).astype(np.uint8)
        self._t0_mono = None
        self._opened_mono = time.monotonic_ns()

    def begin(self, start_wall_ns: int, start_monotonic_ns: int) -> None:
        """Frame 0 is captured at this instant; frame i one period after frame i-1."""
        self._t0_wall, self._t0_mono, self._next = start_wall_ns, start_monotonic_ns, 0

    def read(self, timeout_s: float, cancel: threading.Event) -> CapturedFrame | None:
        """The next frame slot, waited for on the monotonic clock. Slots that passed while
        the caller was busy are skipped, as a real sensor's frames would be lost."""
        if self._t0_mono is None:
            self.begin(time.time_ns(), time.monotonic_ns())
        assert self._t0_mono is not None
        now = time.monotonic_ns()
        index = max(self._next, int((now - self._t0_mono) // self._period_ns))
        slot = self._t0_mono + round(index * self._period_ns)
        if slot > now and cancel.wait((slot - now) / 1e9):
            return None
        if cancel.is_set():
            return None
        self._next = index + 1
        capture_ns = self._t0_wall + (slot - self._t0_mono)
        return CapturedFrame(self.render(index, capture_ns), capture_ns)

    def still(self) -> av.VideoFrame:
        """The pattern as it is now."""
        index = int((time.monotonic_ns() - self._opened_mono) // self._period_ns)
        return self.render(index, time.time_ns())

    def render(self, index: int, capture_ns: int) -> av.VideoFrame:
        """Frame ``index``: a diagonal gradient that moves, a sweeping bar, a label."""
        if self._base is None:
            self.open()
        assert self._base is not None
        w, h = self.width, self.height
        yuv = np.empty((h * 3 // 2, w), dtype=np.uint8)
        y = yuv[:h]
        np.add(self._base, np.uint8((index * 3 + self._phase) % 256), out=y, casting="unsafe")
        bar = (index * 8) % w
        y[:, bar : bar + max(2, w // 40)] = 235
        label = render_text(overlay_label(index, capture_ns, self.camera), self._scale)
        lh, lw = label.shape
        lh, lw = min(lh, h - 4), min(lw, w - 4)
        box = y[2 : 2 + lh + 2 * self._scale, 2 : 2 + lw + 2 * self._scale]
        box[:] = 16
        y[2 + self._scale : 2 + self._scale + lh, 2 + self._scale : 2 + self._scale + lw][
            label[:lh, :lw]
        ] = 235
        yuv[h:] = 128  # neutral chroma: a grey-scale picture
        return av.VideoFrame.from_ndarray(yuv, format="yuv420p")

    def close(self) -> None:
        """Nothing to release."""
        self._base = None
