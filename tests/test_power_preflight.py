"""Power preflight: missing programs named with how to install them, a battery command's
one run validated, the shutdown program looked up; against fake executables."""

from __future__ import annotations

import json
from pathlib import Path

from node_agent.commands import CommandRunner
from node_agent.power.preflight import preflight_problems
from node_agent.power.settings import PowerSettings
from tests.fakebin import FakeBin

GOOD = json.dumps({"battery_percent": 71, "battery_voltage": 3.31, "on_ac": False})


def settings(fake: FakeBin, **kw: object) -> PowerSettings:
    systemctl = fake.add("systemctl")
    return PowerSettings.model_validate({"shutdown_command": [str(systemctl), "poweroff"]} | kw)


def test_a_good_command_provider_has_no_problems(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    battery = fake.add("battery-info.sh", stdout=GOOD)
    s = settings(fake, provider="command", command=[str(battery)])
    assert preflight_problems(s, CommandRunner()) == []
    assert fake.argvs() == [["battery-info.sh"]]  # one run; systemctl only looked up


def test_provider_none_checks_nothing(tmp_path: Path) -> None:
    assert (
        preflight_problems(PowerSettings(shutdown_command=["/nonexistent"]), CommandRunner()) == []
    )


def test_a_missing_lifepo4wered_cli_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    s = settings(fake, provider="lifepo4wered", lifepo4wered_cli="lifepo4wered-cli")
    problems = preflight_problems(s, CommandRunner(), which=lambda _name: None)
    assert len(problems) == 1
    assert "lifepo4wered-cli is not on PATH" in problems[0]
    assert "LiFePO4wered/Pi software from its maker" in problems[0]


def test_a_found_lifepo4wered_cli_is_read_once(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    cli = fake.add("lifepo4wered-cli", stdout="VIN = 0\n")  # no VBAT: not the HAT's output
    s = settings(fake, provider="lifepo4wered", lifepo4wered_cli=str(cli))
    assert any("no VBAT" in p for p in preflight_problems(s, CommandRunner()))


def test_battery_command_problems(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    not_json = fake.add("battery-info.sh", stdout="battery: 71%")
    s = settings(fake, provider="command", command=[str(not_json)])
    assert any("not JSON" in p for p in preflight_problems(s, CommandRunner()))
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\necho '{}'\n")
    s = settings(fake, provider="command", command=[str(plain)])
    assert preflight_problems(s, CommandRunner()) == [
        f"power.command: {plain} is not executable (chmod +x it)"
    ]
    s = settings(fake, provider="command", command=["/nonexistent/battery-info.sh"])
    assert preflight_problems(s, CommandRunner()) == [
        "power.command: /nonexistent/battery-info.sh does not exist"
    ]


def test_a_missing_shutdown_program(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    battery = fake.add("battery-info.sh", stdout=GOOD)
    s = PowerSettings(
        provider="command", command=[str(battery)], shutdown_command=["no-such-systemctl"]
    )
    problems = preflight_problems(s, CommandRunner())
    assert problems == [
        "power.shutdown_command: no-such-systemctl is not on PATH: the machine could not be "
        "shut down at 25 %"
    ]


def test_sysfs_without_a_battery(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    s = settings(fake, provider="sysfs", sysfs_root=str(tmp_path / "power_supply"))
    assert any("power.provider sysfs" in p for p in preflight_problems(s, CommandRunner()))
