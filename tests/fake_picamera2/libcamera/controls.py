"""``libcamera.controls``: the vendor namespace ``rpi`` with the sync mode's enumeration."""

from __future__ import annotations

from enum import IntEnum


class _SyncModeEnum(IntEnum):
    """``SyncMode`` (control_ids_rpi.yaml): SyncModeOff, SyncModeServer, SyncModeClient."""

    Off = 0
    Server = 1
    Client = 2


class rpi:  # the bindings name it so
    """Raspberry Pi vendor controls."""

    SyncModeEnum = _SyncModeEnum
