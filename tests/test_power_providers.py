"""The four battery providers against real stand-ins: a fake ``lifepo4wered-cli`` printing
the HAT's ``NAME = value`` registers, fake ``/sys/class/power_supply`` trees, and battery
commands that print good, bad, non-JSON output or hang."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node_agent.commands import CommandRunner
from node_agent.power.command import CommandProvider, ReadingError, parse_reading
from node_agent.power.lifepo4wered import Lifepo4weredProvider, percent_from_mv
from node_agent.power.provider import make_provider
from node_agent.power.settings import PowerSettings
from node_agent.power.sysfs import SysfsProvider
from tests.fakebin import FakeBin

FIXTURES = Path(__file__).parent / "fixtures" / "power"


def cli(tmp_path: Path, fixture: str, exit_code: int = 0) -> tuple[FakeBin, str]:
    fake = FakeBin(tmp_path)
    path = fake.add(
        "lifepo4wered-cli", stdout=(FIXTURES / fixture).read_text(), exit_code=exit_code
    )
    return fake, str(path)


def test_lifepo4wered_on_ac_reads_vbat_through_the_discharge_curve(tmp_path: Path) -> None:
    fake, path = cli(tmp_path, "lifepo4wered-get-ac.txt")
    reading = Lifepo4weredProvider(path, CommandRunner(), 5).read()
    assert reading.ok and reading.provider == "lifepo4wered"
    assert reading.on_ac is True  # VIN 5023 mV over VIN_THRESHOLD 4500
    assert reading.voltage_v == pytest.approx(3.342)
    assert reading.percent == pytest.approx(91.7, abs=0.1)
    assert fake.argvs() == [["lifepo4wered-cli", "get"]]


def test_lifepo4wered_on_battery(tmp_path: Path) -> None:
    _, path = cli(tmp_path, "lifepo4wered-get-battery.txt")
    reading = Lifepo4weredProvider(path, CommandRunner(), 5).read()
    assert reading.ok and reading.on_ac is False
    assert reading.percent == pytest.approx(30.0)


def test_lifepo4wered_reads_even_under_dry_run(tmp_path: Path) -> None:
    fake, path = cli(tmp_path, "lifepo4wered-get-battery.txt")
    assert Lifepo4weredProvider(path, CommandRunner(dry_run=True), 5).read().ok
    assert len(fake.calls()) == 1  # a read-only call: the plan needs the battery


def test_lifepo4wered_failures_are_readings(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    broken = fake.add("lifepo4wered-cli", stdout="", script="echo 'I2C bus error' >&2; exit 1")
    reading = Lifepo4weredProvider(str(broken), CommandRunner(), 5).read()
    assert not reading.ok and "exit 1" in (reading.error or "") and "I2C" in (reading.error or "")
    odd = fake.add("odd-cli", stdout="VIN = 5000\nhello\n")
    reading = Lifepo4weredProvider(str(odd), CommandRunner(), 5).read()
    assert not reading.ok and "no VBAT" in (reading.error or "")
    missing = Lifepo4weredProvider("/nonexistent/lifepo4wered-cli", CommandRunner(), 5).read()
    assert not missing.ok and "not found" in (missing.error or "")


@pytest.mark.parametrize(
    ("mv", "percent"), [(2500, 0), (2850, 0), (3200, 20), (3275, 55), (3400, 100), (4000, 100)]
)
def test_discharge_curve(mv: float, percent: float) -> None:
    assert percent_from_mv(mv) == pytest.approx(percent)


def supply(root: Path, name: str, **files: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in files.items():
        (folder / key).write_text(value + "\n")
    return folder


def test_sysfs_battery_with_mains_online(tmp_path: Path) -> None:
    supply(tmp_path, "AC", type="Mains", online="1")
    supply(tmp_path, "BAT0", type="Battery", capacity="47", voltage_now="3712000", status="Full")
    reading = SysfsProvider(tmp_path, None).read()
    assert reading.ok and reading.on_ac is True and reading.percent == 47.0
    assert reading.voltage_v == pytest.approx(3.712)


def test_sysfs_usb_offline_is_on_battery(tmp_path: Path) -> None:
    supply(tmp_path, "usb", type="USB", online="0")
    supply(tmp_path, "battery", type="Battery", capacity="33", status="Discharging")
    reading = SysfsProvider(tmp_path, None).read()
    assert reading.ok and reading.on_ac is False and reading.charging is False
    assert reading.percent == 33.0


def test_sysfs_without_another_supply_reads_ac_from_the_status(tmp_path: Path) -> None:
    supply(tmp_path, "BAT1", type="Battery", capacity="80", status="Charging")
    reading = SysfsProvider(tmp_path, None).read()
    assert reading.on_ac is True and reading.charging is True


def test_sysfs_no_battery_is_a_failed_reading(tmp_path: Path) -> None:
    supply(tmp_path, "AC", type="Mains", online="1")
    reading = SysfsProvider(tmp_path, None).read()
    assert not reading.ok and "no supply of type Battery" in (reading.error or "")
    named = SysfsProvider(tmp_path, "BAT9").read()
    assert not named.ok and "BAT9" in (named.error or "") and "AC" in (named.error or "")
    gone = SysfsProvider(tmp_path / "nope", None).read()
    assert not gone.ok


def test_sysfs_broken_capacity(tmp_path: Path) -> None:
    supply(tmp_path, "BAT0", type="Battery", capacity="180", status="Discharging")
    reading = SysfsProvider(tmp_path, None).read()
    assert not reading.ok and "180" in (reading.error or "")


def test_sysfs_unreadable_capacity_and_no_ac_state_fails(tmp_path: Path) -> None:
    supply(tmp_path, "BAT0", type="Battery", capacity="garbage")
    reading = SysfsProvider(tmp_path, None).read()
    assert not reading.ok and "no capacity" in (reading.error or "")


def command(tmp_path: Path, body: str) -> CommandProvider:
    fake = FakeBin(tmp_path)
    path = fake.add("battery-info.sh", script=body)
    return CommandProvider([str(path), "--json"], CommandRunner(), 1.0)


def test_command_with_the_seed_s_keys(tmp_path: Path) -> None:
    out = json.dumps({"battery_percent": 64, "battery_voltage": 3.29, "ac_power": "no"})
    reading = command(tmp_path, f"echo '{out}'").read()
    assert reading.ok and reading.provider == "command"
    assert (reading.percent, reading.voltage_v, reading.on_ac) == (64.0, 3.29, False)


def test_command_vin_threshold_gives_the_ac_state() -> None:
    reading = parse_reading('{"battery_percent": "40", "vin_mv": 5100, "vin_threshold_mv": 4500}')
    assert reading.on_ac is True and reading.percent == 40.0


@pytest.mark.parametrize(
    ("out", "why"),
    [
        ("battery low", "not JSON"),
        ("[1, 2]", "JSON list"),
        ('{"battery_percent": 140}', "outside 0..100"),
        ('{"battery_percent": "lots"}', "not a number"),
        ('{"battery_percent": true}', "not a number"),
        ('{"on_ac": "maybe"}', "not true/false"),
        ('{"battery_voltage": 3.3}', "neither battery_percent nor an AC state"),
    ],
)
def test_command_bad_output_is_a_failed_reading(tmp_path: Path, out: str, why: str) -> None:
    with pytest.raises(ReadingError, match=why):
        parse_reading(out)
    reading = command(tmp_path, f"printf '%s' '{out}'").read()
    assert not reading.ok and why in (reading.error or "")
    assert reading.percent is None and reading.on_ac is None


def test_command_failing_and_hanging(tmp_path: Path) -> None:
    failing = command(tmp_path / "a", "echo 'no i2c' >&2; exit 3").read()
    assert not failing.ok and "exit 3: no i2c" in (failing.error or "")
    hanging = command(tmp_path / "b", "exec sleep 30").read()
    assert not hanging.ok and "timed out" in (hanging.error or "")


def test_make_provider_picks_by_name(tmp_path: Path) -> None:
    runner = CommandRunner()
    assert make_provider(PowerSettings(), runner).read().on_ac is True  # none: mains
    made = make_provider(PowerSettings(provider="command", command=["x"]), runner)
    assert isinstance(made, CommandProvider) and made.argv == ["x"]
    assert isinstance(make_provider(PowerSettings(provider="sysfs"), runner), SysfsProvider)
    lp = make_provider(PowerSettings(provider="lifepo4wered"), runner)
    assert isinstance(lp, Lifepo4weredProvider) and lp.cli == "lifepo4wered-cli"
