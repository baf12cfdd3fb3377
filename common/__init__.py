"""What both programs share and neither owns: the error base, HTTP plumbing, settings sources.

The coordinator (``app``) and the node agent (``node_agent``) both import this package;
it imports neither of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("camfleet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
