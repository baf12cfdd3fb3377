"""The USB adapter for the dashcam: power and data on its hub port, one call per mode.

A USB dashcam has three useful states: **off** (no power), **recording** (powered, so it
records, but not offered to the host as storage) and **data** (powered and enumerated, so
its card shows up as a block device). Two ways to get there:

- ``UhubctlControl``: ``uhubctl -l HUB -p PORT -a on|off`` switches the port's power;
  data versus recording is the port's device authorized or not
  (``/sys/bus/usb/devices/{HUB}.{PORT}/authorized``), as the seed's scripts do. The sysfs
  write goes through ``write_attr``, so under ``--dry-run`` it is logged and not done.
- ``ScriptControl``: the seed's own ``start-for-data.sh``, ``start-for-recording.sh`` and
  ``stop-all-ports.sh``, for a rig whose wiring those scripts already know.

Every call answers a ``Completed``; none raises, so the caller decides what a failure means.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from node_agent.commands import CommandRunner, Completed
from node_agent.dashcam.settings import CameraUsbSettings

log = logging.getLogger(__name__)


class UsbControl(Protocol):
    """Switches the camera between data, recording (power only) and off."""

    def data_mode(self) -> Completed:
        """Power on and offer the camera's storage to the host."""
        ...

    def recording_mode(self) -> Completed:
        """Power on, storage not offered: the camera records."""
        ...

    def power_off(self) -> Completed:
        """The camera's port off."""
        ...

    def all_off(self) -> Completed:
        """Every port of the hub off (the seed's start-up policy: start disconnected)."""
        ...


def port_device(hub_location: str, port: int) -> str:
    """The kernel's name of the device on ``port`` of hub ``hub_location``: ``1-1`` port 2
    is ``1-1.2``; a root hub ``2`` port 1 is ``2-1``."""
    sep = "." if "-" in hub_location else "-"
    return f"{hub_location}{sep}{port}"


def write_attr(runner: CommandRunner, path: Path, value: str) -> Completed:
    """Write ``value`` to a sysfs attribute; under dry-run, log it and write nothing."""
    argv = ("write", str(path), value)
    if runner.dry_run:
        log.info("would write: %s > %s", value, shlex.quote(str(path)))
        return Completed(argv, 0, dry_run=True)
    log.info("write: %s > %s", value, shlex.quote(str(path)))
    try:
        path.write_text(value + "\n")
    except OSError as err:
        log.warning("writing %s to %s failed: %s", value, path, err)
        return Completed(argv, 1, "", str(err))
    return Completed(argv, 0)


def _first_failure(steps: Sequence[Completed]) -> Completed:
    """The first step that failed, else the last step."""
    return next((s for s in steps if not s.ok), steps[-1])


class UhubctlControl:
    """``uhubctl`` for power, the port device's ``authorized`` attribute for data."""

    def __init__(
        self,
        hub_location: str,
        port: int,
        runner: CommandRunner,
        uhubctl: str = "uhubctl",
        sysfs_usb: Path = Path("/sys/bus/usb/devices"),
        timeout_s: float = 15.0,
        enumerate_timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hub = hub_location
        self.port = port
        self.runner = runner
        self.uhubctl = uhubctl
        self.authorized = sysfs_usb / port_device(hub_location, port) / "authorized"
        self.timeout_s = timeout_s
        self.enumerate_timeout_s = enumerate_timeout_s
        self.sleep = sleep

    def _power(self, on: bool, all_ports: bool = False) -> Completed:
        argv = [self.uhubctl, "-l", self.hub]
        if not all_ports:
            argv += ["-p", str(self.port)]
        argv += ["-a", "on" if on else "off"]
        return self.runner.run(argv, timeout_s=self.timeout_s)

    def _authorize(self, on: bool) -> Completed:
        waited = 0.0
        while not self.runner.dry_run and not self.authorized.parent.exists():
            if waited >= self.enumerate_timeout_s:
                break
            self.sleep(0.2)  # a port just powered on takes a moment to enumerate
            waited += 0.2
        if not self.runner.dry_run and not self.authorized.parent.exists():
            # Not enumerated: nothing to (de)authorize; the next mode switch tries again.
            note = f"{self.authorized.parent} absent: the camera has not enumerated"
            log.info("%s", note)
            return Completed(("write", str(self.authorized), "1" if on else "0"), 0, note)
        return write_attr(self.runner, self.authorized, "1" if on else "0")

    def data_mode(self) -> Completed:
        """Power on, then authorize the device so its storage enumerates."""
        steps = [self._power(True)]
        if steps[0].ok:
            steps.append(self._authorize(True))
        return _first_failure(steps)

    def recording_mode(self) -> Completed:
        """Power on, then deauthorize the device: powered, no storage offered."""
        steps = [self._power(True)]
        if steps[0].ok:
            steps.append(self._authorize(False))
        return _first_failure(steps)

    def power_off(self) -> Completed:
        """The camera's port off."""
        return self._power(False)

    def all_off(self) -> Completed:
        """Every port of the hub off."""
        return self._power(False, all_ports=True)


class ScriptControl:
    """The seed's control scripts, each run as configured (program and arguments)."""

    def __init__(
        self,
        start_for_data: Sequence[str],
        start_for_recording: Sequence[str],
        stop_all_ports: Sequence[str],
        runner: CommandRunner,
        timeout_s: float = 30.0,
    ) -> None:
        self.start_for_data = list(start_for_data)
        self.start_for_recording = list(start_for_recording)
        self.stop_all_ports = list(stop_all_ports)
        self.runner = runner
        self.timeout_s = timeout_s

    def data_mode(self) -> Completed:
        """``start-for-data.sh``."""
        return self.runner.run(self.start_for_data, timeout_s=self.timeout_s)

    def recording_mode(self) -> Completed:
        """``start-for-recording.sh``."""
        return self.runner.run(self.start_for_recording, timeout_s=self.timeout_s)

    def power_off(self) -> Completed:
        """``stop-all-ports.sh`` (the scripts have no per-port off)."""
        return self.runner.run(self.stop_all_ports, timeout_s=self.timeout_s)

    def all_off(self) -> Completed:
        """``stop-all-ports.sh``."""
        return self.runner.run(self.stop_all_ports, timeout_s=self.timeout_s)


def make_usb(camera: CameraUsbSettings, runner: CommandRunner) -> UsbControl:
    """The adapter ``dashcam.camera.control`` names."""
    if camera.control == "scripts":
        # The settings' validator makes sure all three are set.
        assert camera.start_for_data and camera.start_for_recording and camera.stop_all_ports
        return ScriptControl(
            camera.start_for_data, camera.start_for_recording, camera.stop_all_ports, runner
        )
    return UhubctlControl(
        camera.hub_location, camera.port_number, runner, camera.uhubctl, camera.sysfs_usb
    )
