"""camfleet node agent: one camera, its clock, its disk, on one Raspberry Pi."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("camfleet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
