"""What the recorder asks of the disk's housekeeper (``node_agent.storage.Housekeeper``).

The recorder depends on this small protocol, not on the storage package: a start asks
for room first, a recording that reaches its disk reserve asks retention to free
offloaded footage before it gives up, and a finished recording asks for a rescan.
"""

from __future__ import annotations

from typing import Protocol


class StorageKeeper(Protocol):
    """The housekeeper as the recorder sees it."""

    def room_for_start(self, need_bytes: int) -> tuple[int, str | None]:
        """Free bytes after retention made room for ``need_bytes``, and why a start must be
        refused at the critical level (None when it need not)."""
        ...

    def make_room(self, need_bytes: int, why: str) -> str | None:
        """A recording reached its reserve (``why``): None when retention freed
        ``need_bytes``, else the reason to stop (and the alarm is raised)."""
        ...

    def request_refresh(self) -> None:
        """The folder changed (a recording began or ended): rescan soon, without waiting."""
        ...
