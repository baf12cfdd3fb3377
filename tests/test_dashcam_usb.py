"""The USB adapter against a fake uhubctl and the seed's control scripts (FakeBin), and the
port device's ``authorized`` attribute in a fake sysfs."""

from __future__ import annotations

from pathlib import Path

from node_agent.commands import CommandRunner
from node_agent.dashcam.settings import CameraUsbSettings
from node_agent.power.usb import ScriptControl, UhubctlControl, make_usb, port_device
from tests.dashcam_standin import FakeSysfs
from tests.fakebin import FakeBin


def test_port_device_names() -> None:
    assert port_device("1-1", 1) == "1-1.1"
    assert port_device("1-1.2", 3) == "1-1.2.3"
    assert port_device("2", 1) == "2-1"


def uhub(
    tmp_path: Path, dry_run: bool = False, exit_code: int = 0
) -> tuple[UhubctlControl, FakeBin, FakeSysfs]:
    fb = FakeBin(tmp_path)
    sysfs = FakeSysfs(tmp_path / "root")
    sysfs.add_usb()
    settings = CameraUsbSettings(
        uhubctl=str(fb.add("uhubctl", exit_code=exit_code)), sysfs_usb=sysfs.usb
    )
    usb = make_usb(settings, CommandRunner(dry_run=dry_run))
    assert isinstance(usb, UhubctlControl)
    return usb, fb, sysfs


def test_recording_is_power_without_data_and_data_authorizes(tmp_path: Path) -> None:
    usb, fb, sysfs = uhub(tmp_path)
    authorized = sysfs.usb / "1-1.1" / "authorized"
    assert usb.recording_mode().ok
    assert authorized.read_text().strip() == "0"
    assert usb.data_mode().ok
    assert authorized.read_text().strip() == "1"
    assert usb.power_off().ok and usb.all_off().ok
    assert [a[1:] for a in fb.argvs("uhubctl")] == [
        ["-l", "1-1", "-p", "1", "-a", "on"],
        ["-l", "1-1", "-p", "1", "-a", "on"],
        ["-l", "1-1", "-p", "1", "-a", "off"],
        ["-l", "1-1", "-a", "off"],  # every port of the hub
    ]


def test_a_failing_uhubctl_is_an_answer_and_nothing_is_authorized(tmp_path: Path) -> None:
    usb, fb, sysfs = uhub(tmp_path, exit_code=1)
    assert fb.calls() == []
    done = usb.data_mode()
    assert not done.ok and "exit 1" in done.describe()
    (sysfs.usb / "1-1.1" / "authorized").write_text("0\n")
    usb.data_mode()
    assert (sysfs.usb / "1-1.1" / "authorized").read_text().strip() == "0"
    assert len(fb.argvs("uhubctl")) == 2  # each attempt tried the power, nothing more


def test_dry_run_logs_and_touches_nothing(tmp_path: Path) -> None:
    usb, fb, sysfs = uhub(tmp_path, dry_run=True)
    done = usb.recording_mode()
    assert done.ok and done.dry_run  # answers as if done
    assert usb.data_mode().ok and usb.all_off().ok
    assert fb.calls() == []
    assert (sysfs.usb / "1-1.1" / "authorized").read_text().strip() == "1"


def test_not_enumerated_yet_waits_then_says_so(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    waits: list[float] = []
    usb = UhubctlControl(
        "1-1",
        1,
        CommandRunner(),
        str(fb.add("uhubctl")),
        tmp_path / "no-such-sysfs",
        enumerate_timeout_s=1.0,
        sleep=waits.append,
    )
    done = usb.recording_mode()
    assert done.ok and "has not enumerated" in done.stdout
    assert len(waits) == 5


def test_scripts_run_as_configured(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    data, rec, stop = (
        fb.add(n) for n in ("start-for-data.sh", "start-for-recording.sh", "stop-all-ports.sh")
    )
    settings = CameraUsbSettings(
        control="scripts",
        start_for_data=[str(data)],
        start_for_recording=[str(rec), "--quiet"],
        stop_all_ports=[str(stop)],
    )
    usb = make_usb(settings, CommandRunner())
    assert isinstance(usb, ScriptControl)
    usb.all_off()
    usb.recording_mode()
    usb.data_mode()
    usb.power_off()
    assert fb.argvs() == [
        ["stop-all-ports.sh"],
        ["start-for-recording.sh", "--quiet"],
        ["start-for-data.sh"],
        ["stop-all-ports.sh"],
    ]
