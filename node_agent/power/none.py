"""Provider ``none``: no battery; the node is on mains power."""

from __future__ import annotations

import time

from node_agent.power.schemas import PowerReading


class NoProvider:
    """Always on mains: no percentage, ``on_ac`` true."""

    name = "none"

    def read(self) -> PowerReading:
        """A reading that says mains, now."""
        return PowerReading(provider=self.name, ok=True, on_ac=True, read_at_ns=time.time_ns())
