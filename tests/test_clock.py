"""Clock telemetry: chronyc's CSV parsed from golden files, and the adapter against real chronyd."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from node_agent.telemetry.clock import ClockMonitor, TrackingParseError, parse_tracking
from tests.chrony import chrony_pair

FIXTURES = Path(__file__).parent / "fixtures" / "chrony"


@pytest.mark.parametrize(
    ("fixture", "synchronized", "offset_ns", "stratum"),
    [
        # chronyc prints "0.000001782 seconds fast of NTP time" for this line
        ("client_fast.csv", True, 1782, 9),
        # a Wi-Fi client 2.5 ms slow of its server
        ("client_slow_wifi.csv", True, -2_500_000, 3),
        # the rig's reference serving its own clock ("local stratum 8")
        ("local_master.csv", True, 0, 8),
        ("unsynchronised.csv", False, 0, 0),
    ],
)
def test_parse_tracking_golden_files(
    fixture: str, synchronized: bool, offset_ns: int, stratum: int
) -> None:
    tracking = parse_tracking((FIXTURES / fixture).read_text())
    assert tracking.synchronized is synchronized
    assert tracking.offset_ns == offset_ns
    assert tracking.stratum == stratum


@pytest.mark.parametrize(
    "text",
    [
        "",
        "506 Cannot talk to daemon",
        "7F000001,127.0.0.1,9,1.0,abc,0,0,0,0,0,0,0,0.1,Normal",
        "7F000001,127.0.0.1,9,1.0,0.1,0,0,0,0,0,0,0,0.1,Normal,extra",
    ],
)
def test_parse_tracking_refuses_what_is_not_a_report(text: str) -> None:
    with pytest.raises(TrackingParseError):
        parse_tracking(text)


def fake_chronyc(tmp_path: Path, script: str) -> str:
    path = tmp_path / "chronyc"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_monitor_reports_a_failing_chronyc_as_data(tmp_path: Path) -> None:
    chronyc = fake_chronyc(tmp_path, "echo '506 Cannot talk to daemon' >&2\nexit 1\n")
    status = asyncio.run(ClockMonitor(chronyc).read_once())
    assert status.source == "none" and status.synchronized is False
    assert status.error is not None and "Cannot talk to daemon" in status.error


def test_monitor_reports_garbage_output_as_data(tmp_path: Path) -> None:
    status = asyncio.run(ClockMonitor(fake_chronyc(tmp_path, "echo hello\n")).read_once())
    assert status.synchronized is False
    assert status.error is not None and "expected 14" in status.error


def test_monitor_without_chronyc_installed(tmp_path: Path) -> None:
    status = asyncio.run(ClockMonitor(str(tmp_path / "missing-chronyc")).read_once())
    assert status.error is not None and "not found" in status.error


def test_monitor_passes_the_csv_flags(tmp_path: Path) -> None:
    # The fake prints its arguments' shape back as a tracking line's reference name.
    line = (FIXTURES / "client_fast.csv").read_text().strip().replace("127.0.0.1", "$1$2$3")
    chronyc = fake_chronyc(tmp_path, f'echo "{line}"\n')
    status = asyncio.run(ClockMonitor(chronyc).read_once())
    assert status.reference == "-c-ntracking"


@pytest.mark.skipif(os.geteuid() != 0, reason="chronyd -u root needs root (CI runs as root)")
def test_monitor_reads_a_real_chronyd(tmp_path: Path) -> None:
    with chrony_pair(tmp_path / "chrony") as pair:
        client = asyncio.run(ClockMonitor(extra_args=pair.chronyc_args("client")).read_once())
        server = asyncio.run(ClockMonitor(extra_args=pair.chronyc_args("server")).read_once())
    assert client.source == "chrony" and client.synchronized is True
    assert client.reference == "127.0.0.1" and client.stratum == 9
    assert client.offset_ns is not None and abs(client.offset_ns) < 1_000_000  # same machine
    assert server.synchronized is True and server.stratum == 8 and server.offset_ns == 0
