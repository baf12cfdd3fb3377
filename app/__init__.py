"""camfleet coordinator: fleet registry, synchronized sessions, manifests, dashboard, metrics."""

from node_agent import __version__

__all__ = ["__version__"]
