"""A synthetic camera: a moving test pattern with the frame counter and capture time burned in.

Frames are built directly in YUV 4:2:0 so that generating them costs far less than
encoding them; the recorder paces and encodes them exactly like real camera frames.
"""

from __future__ import annotations

import time

import av
import numpy as np
import numpy.typing as npt

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
    "F": ("111", "100", "110", "100", "100"),
    " ": ("000", "000", "000", "000", "000"),
}
_GLYPH_BITS = {
    ch: np.array([[c == "1" for c in row] for row in rows], dtype=bool)
    for ch, rows in _GLYPHS.items()
}


def render_text(text: str, scale: int) -> npt.NDArray[np.bool_]:
    """A boolean bitmap of ``text`` (characters from the font above), scaled up."""
    cols = []
    for ch in text:
        cols.append(_GLYPH_BITS[ch])
        cols.append(np.zeros((5, 1), dtype=bool))
    bitmap = np.hstack(cols) if cols else np.zeros((5, 0), dtype=bool)
    return np.kron(bitmap, np.ones((scale, scale), dtype=bool)).astype(bool)


def overlay_label(index: int, capture_ns: int) -> str:
    """The text burned into a frame: counter and UTC capture time to the millisecond."""
    secs, ns = divmod(capture_ns, 1_000_000_000)
    hms = time.strftime("%H:%M:%S", time.gmtime(secs))
    return f"F{index:06d} {hms}.{ns // 1_000_000:03d}"


class SyntheticCamera:
    """Generated frames; the default camera off a Pi and in every test."""

    name = "synthetic"

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._base: npt.NDArray[np.uint8] | None = None
        self._scale = max(1, height // 90)

    def open(self) -> None:
        """Precompute the static part of the pattern."""
        yy, xx = np.mgrid[0 : self.height, 0 : self.width]
        self._base = ((xx // 2 + yy // 2) % 256).astype(np.uint8)

    def read(self, index: int, capture_ns: int) -> av.VideoFrame:
        """Build frame ``index``: a diagonal gradient that moves, a sweeping bar, a label."""
        if self._base is None:
            self.open()
        assert self._base is not None
        w, h = self.width, self.height
        yuv = np.empty((h * 3 // 2, w), dtype=np.uint8)
        y = yuv[:h]
        np.add(self._base, np.uint8((index * 3) % 256), out=y, casting="unsafe")
        bar = (index * 8) % w
        y[:, bar : bar + max(2, w // 40)] = 235
        label = render_text(overlay_label(index, capture_ns), self._scale)
        lh, lw = label.shape
        lh, lw = min(lh, h - 4), min(lw, w - 4)
        box = y[2 : 2 + lh + 2 * self._scale, 2 : 2 + lw + 2 * self._scale]
        box[:] = 16
        y[2 + self._scale : 2 + self._scale + lh, 2 + self._scale : 2 + self._scale + lw][
            label[:lh, :lw]
        ] = 235
        yuv[h:] = 128  # neutral chroma: a grey-scale picture
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        return frame

    def close(self) -> None:
        """Nothing to release."""
        self._base = None
