"""Clock telemetry: chronyc's CSV parsed from golden files, and the adapter against real chronyd.

The ``client_*``/``master_*`` fixtures were captured from real daemons by
``python -m tests.capture_chrony_fixtures``; the four single-line ones are hand-made."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest

from node_agent.telemetry.chrony import (
    ClockMonitor,
    ClockRole,
    TrackingParseError,
    parse_report,
    parse_sources,
    parse_sourcestats,
    parse_tracking,
)
from node_agent.telemetry.clock_status import status_from_report
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
        "^,*,127.0.0.1,8,-4,377,0,0.0,0.0,0.0",  # a sources line is not a tracking report
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
    assert status.reference is None and status.error_bound_ns is None


def test_monitor_without_chronyc_installed(tmp_path: Path) -> None:
    status = asyncio.run(ClockMonitor(str(tmp_path / "missing-chronyc")).read_once())
    assert status.error is not None and "not found" in status.error


def test_monitor_passes_host_port_and_the_csv_flags(tmp_path: Path) -> None:
    # The fake prints its arguments back as a tracking line's reference name.
    line = (FIXTURES / "client_fast.csv").read_text().strip().replace("127.0.0.1", "$*")
    chronyc = fake_chronyc(tmp_path, f'echo "{line}"\n')
    sock = "/run/chrony/chronyd.sock"
    status = asyncio.run(ClockMonitor(chronyc, host=sock, port=3323).read_once())
    assert status.reference == f"-h {sock} -p 3323 -c -n -m tracking sources sourcestats"


def test_monitor_gives_up_on_a_chronyc_that_hangs(tmp_path: Path) -> None:
    chronyc = fake_chronyc(tmp_path, "exec sleep 30\n")
    t0 = time.monotonic()
    status = asyncio.run(ClockMonitor(chronyc, timeout_s=0.5).read_once())
    assert time.monotonic() - t0 < 10
    assert status.synchronized is False
    assert status.error == "chronyc: no answer within 0.5 s"


def report(name: str) -> str:
    return "".join((FIXTURES / f"{name}_{r}.csv").read_text() for r in REPORTS)


REPORTS = ("tracking", "sources", "sourcestats")
CLIENT = ClockRole(role="client", master="127.0.0.1")
READ_AT_NS = 1_796_149_850_000_000_000


def test_a_synchronised_client_from_the_real_daemon() -> None:
    status = status_from_report(parse_report(report("client_synced")), READ_AT_NS, CLIENT)
    assert status.synchronized is True and status.follows_master is True
    assert status.offset_ns == 2274 and status.rms_offset_ns == 2153
    assert status.root_delay_ns == 9230 and status.root_dispersion_ns == 6035
    assert status.error_bound_ns == 2274 + 6035 + 9230 // 2
    assert status.frequency_ppm == -0.692 and status.skew_ppm == 25.085
    assert status.stratum == 9 and status.leap_status == "Normal"
    assert status.reference == "127.0.0.1" and status.reference_id == "7F000001"
    assert status.selected_source == "127.0.0.1"
    assert status.last_update_age_s == pytest.approx(1.645, abs=0.001)
    assert status.role == "client" and status.master == "127.0.0.1"
    [src] = status.sources
    assert (src.mode, src.state, src.stratum, src.poll_log2, src.reach) == (
        "server",
        "selected",
        8,
        -4,
        255,
    )
    assert src.last_rx_s == 0 and src.offset_ns == -238 and src.error_ns == 4687
    assert src.samples == 9 and src.std_dev_ns == 1879 and src.skew_ppm == 22.886


def test_the_client_after_its_master_was_killed_is_unsynchronised() -> None:
    # chrony's tracking still says "Normal" (captured so): the source list decides.
    text = report("client_master_killed")
    assert parse_tracking(text).synchronized is True
    status = status_from_report(parse_report(text), READ_AT_NS, CLIENT)
    assert status.synchronized is False and status.follows_master is False
    assert status.selected_source is None and status.leap_status == "Normal"
    assert [(s.state, s.reach) for s in status.sources] == [("unreachable", 0)]


@pytest.mark.parametrize("name", ["master_synced", "master_upstream_unreachable"])
def test_the_master_serving_its_own_clock_is_synchronised(name: str) -> None:
    status = status_from_report(parse_report(report(name)), READ_AT_NS, ClockRole("master"))
    assert status.synchronized is True and status.follows_master is None
    assert status.reference == "LOCAL" and status.stratum == 8 and status.error_bound_ns == 0


def test_a_source_never_heard_from() -> None:
    [src] = parse_sources((FIXTURES / "master_upstream_unreachable_sources.csv").read_text())
    assert src.last_rx_s is None and src.reach == 0 and src.stratum == 0
    [stats] = parse_sourcestats(
        (FIXTURES / "master_upstream_unreachable_sourcestats.csv").read_text()
    )
    assert stats.samples == 0 and stats.std_dev_ns == 4_000_000_000


def test_a_client_following_another_server_does_not_follow_its_master() -> None:
    role = ClockRole(role="client", master="cam-c.local", master_addresses=frozenset({"10.42.0.3"}))
    status = status_from_report(parse_report(report("client_synced")), READ_AT_NS, role)
    assert status.synchronized is True and status.follows_master is False


@pytest.mark.parametrize(
    "text",
    [
        "^,*,127.0.0.1,8,-4,377,0,0.0,0.0",  # nine fields
        "^,*,127.0.0.1,8,-4,999,0,0.0,0.0,0.0",  # reach is octal
        "^,*,127.0.0.1,eight,-4,377,0,0.0,0.0,0.0",
    ],
)
def test_parse_sources_refuses_what_is_not_a_sources_line(text: str) -> None:
    with pytest.raises(TrackingParseError):
        parse_sources(text)


def test_parse_report_refuses_a_stray_line() -> None:
    text = report("client_synced") + "a,b,c\n"
    with pytest.raises(TrackingParseError, match="not a sources or sourcestats line"):
        parse_report(text)


@pytest.mark.skipif(os.geteuid() != 0, reason="chronyd -u root needs root (CI runs as root)")
def test_monitor_reads_a_real_chronyd(tmp_path: Path) -> None:
    with chrony_pair(tmp_path / "chrony") as pair:
        client = asyncio.run(ClockMonitor(extra_args=pair.chronyc_args("client")).read_once())
        server = asyncio.run(ClockMonitor(extra_args=pair.chronyc_args("server")).read_once())
    assert client.source == "chrony" and client.synchronized is True
    assert client.reference == "127.0.0.1" and client.stratum == 9
    assert client.offset_ns is not None and abs(client.offset_ns) < 1_000_000  # same machine
    assert client.selected_source == "127.0.0.1" and client.sources[0].state == "selected"
    assert client.error_bound_ns is not None and client.error_bound_ns >= abs(client.offset_ns)
    assert server.synchronized is True and server.stratum == 8 and server.offset_ns == 0
    assert server.reference == "LOCAL" and server.sources == []
