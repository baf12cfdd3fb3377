"""camfleet node agent: one camera, its clock, its disk, on one Raspberry Pi."""

from common import __version__

__all__ = ["__version__"]
