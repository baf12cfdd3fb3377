"""Provider ``sysfs``: the kernel's ``/sys/class/power_supply``.

The battery is the folder named by ``power.supply``, else the first whose ``type`` is
``Battery``: ``capacity`` (percent), ``voltage_now`` (microvolts) and ``status``
(Charging, Discharging, Full, Not charging). AC is any other supply (Mains, USB) whose
``online`` is 1; with no such supply, a battery that is Charging or Full is on AC.
"""

from __future__ import annotations

import time
from pathlib import Path

from node_agent.power.provider import failed
from node_agent.power.schemas import PowerReading


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def read_supplies(root: Path, supply: str | None) -> PowerReading:
    """The reading of the supplies under ``root`` (see the module docstring)."""
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as err:
        return failed("sysfs", f"{root}: {err.strerror or err}")
    if supply is not None:
        battery = root / supply
        if not battery.is_dir():
            names = ", ".join(p.name for p in folders) or "none"
            return failed("sysfs", f"{battery} does not exist (supplies: {names})")
    else:
        batteries = [p for p in folders if _read(p / "type") == "Battery"]
        if not batteries:
            return failed("sysfs", f"no supply of type Battery under {root}")
        battery = batteries[0]
    capacity = _int(battery / "capacity")
    if capacity is not None and not 0 <= capacity <= 100:
        return failed("sysfs", f"{battery / 'capacity'} is {capacity}, not a percentage")
    microvolts = _int(battery / "voltage_now")
    status = _read(battery / "status")
    others = [p for p in folders if p != battery and _read(p / "type") != "Battery"]
    online = [_int(p / "online") for p in others]
    if any(v is not None for v in online):
        on_ac: bool | None = any(v == 1 for v in online)
    elif status is not None:
        on_ac = status in ("Charging", "Full")
    else:
        on_ac = None
    if capacity is None and on_ac is None:
        return failed("sysfs", f"{battery} has no capacity and no supply says online")
    return PowerReading(
        provider="sysfs",
        ok=True,
        percent=None if capacity is None else float(capacity),
        voltage_v=None if microvolts is None else microvolts / 1e6,
        on_ac=on_ac,
        charging=None if status is None else status == "Charging",
        read_at_ns=time.time_ns(),
    )


class SysfsProvider:
    """Reads the power-supply class folder (no program, no time-out needed)."""

    name = "sysfs"

    def __init__(self, root: Path, supply: str | None) -> None:
        self.root = root
        self.supply = supply

    def read(self) -> PowerReading:
        """One reading now."""
        return read_supplies(self.root, self.supply)
