"""camfleet coordinator: fleet registry, synchronized sessions, manifests, dashboard, metrics."""

from common import __version__

__all__ = ["__version__"]
