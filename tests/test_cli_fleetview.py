"""The fleet table's rows: order, cells and disagreement warnings (pure), and its width."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from rich.console import Console

from app.operator.fleetcmd import StartOptions
from app.operator.fleetview import fleet_rows
from app.operator.tables import fleet_table, recordings_view

STATUS: dict[str, Any] = {
    "recorder": {
        "state": "recording",
        "profile": "1080p30 H.265",
        "fps": 30.0,
        "width": 1920,
        "height": 1080,
        "measured_bitrate_bps": 12_300_000,
        "encode_fps": 29.9,
        "dropped_frames": 0,
        "profile_notes": [],
    },
    "disk": {
        "free_bytes": 50_000_000_000,
        "minutes_left": 240.0,
        "level": "ok",
        "unoffloaded_count": 2,
        "unoffloaded_bytes": 3_000_000_000,
    },
    "clock": {"synchronized": True, "offset_ns": 120_000, "error_bound_ns": 800_000},
    "power": {"provider": "sysfs", "level": "ok", "reading": {"percent": 81.0, "on_ac": False}},
}


def node(node_id: str, cam: str, position: str, **changes: Any) -> dict[str, Any]:
    status = copy.deepcopy(STATUS)
    for dotted, value in changes.items():
        part, key = dotted.split("__")
        status[part][key] = value
    return {
        "node_id": node_id,
        "cam_id": cam,
        "position": position,
        "version": "0.1.0",
        "approved": True,
        "online": True,
        "last_error": None,
        "status": status,
        "clock_flags": [],
    }


def fleet(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"nodes": list(nodes), "online": len(nodes), "total": len(nodes), "pending": 0}


def test_rows_go_left_centre_right_then_others_by_id() -> None:
    rows = fleet_rows(
        fleet(
            node("z-extra", "CAM_X", "other"),
            node("cam-r", "CAM_R", "right"),
            node("a-extra", "CAM_Y", "other"),
            node("cam-l", "CAM_L", "left"),
            node("cam-c", "CAM_C", "centre"),
        )
    )
    assert [r.node_id for r in rows] == ["cam-l", "cam-c", "cam-r", "a-extra", "z-extra"]


def test_cells_show_the_cards_key_fields() -> None:
    (r,) = fleet_rows(fleet(node("cam-c", "CAM_C", "centre")))
    assert r.state == "recording"
    assert r.profile == "1080p30 H.265"
    assert r.bitrate == "12.3 Mb/s"
    assert r.encode == "29.9 / 0"
    assert "240 min" in r.disk
    assert r.unoffloaded.startswith("2 (")
    assert r.power == "81%"
    assert r.clock == "120 µs ± 800 µs"
    assert r.temp == "-" and r.warnings == []


def test_a_node_idle_while_the_others_record_is_warned() -> None:
    rows = fleet_rows(
        fleet(
            node("cam-l", "CAM_L", "left"),
            node("cam-c", "CAM_C", "centre", recorder__state="idle"),
            node("cam-r", "CAM_R", "right"),
        )
    )
    assert rows[1].warnings == ["idle while the others are recording"]
    assert rows[0].ok and rows[2].ok


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"recorder__profile": "720p30 H.264"}, "profile differs (others 1080p30 H.265)"),
        ({"disk__minutes_left": 12.0}, "disk: 12 min left"),
        ({"disk__level": "low"}, "disk low"),
        ({"power__level": "low"}, "battery low"),
        ({"recorder__dropped_frames": 7}, "7 frames dropped"),
    ],
)
def test_one_node_out_of_line_is_warned(change: dict[str, Any], warning: str) -> None:
    rows = fleet_rows(
        fleet(
            node("cam-l", "CAM_L", "left"),
            node("cam-c", "CAM_C", "centre", **change),
            node("cam-r", "CAM_R", "right"),
        )
    )
    assert warning in rows[1].warnings
    assert rows[0].ok and rows[2].ok


def test_offline_version_and_clock_flags() -> None:
    old = node("cam-r", "CAM_R", "right")
    old["version"] = "0.0.9"
    flagged = node("cam-c", "CAM_C", "centre")
    flagged["clock_flags"] = ["bound 40 ms is over one frame period"]
    gone = node("cam-x", "CAM_X", "other")
    gone.update(online=False, status=None, last_error="connection refused")
    rows = fleet_rows(fleet(node("cam-l", "CAM_L", "left"), flagged, old, gone))
    assert "version differs (others 0.1.0)" in rows[2].warnings
    assert rows[1].clock.endswith("!") and rows[1].warnings == [flagged["clock_flags"][0]]
    assert rows[3].state == "offline" and rows[3].warnings == ["offline: connection refused"]
    assert rows[3].disk == "-"


def test_a_cpu_temperature_shows_when_the_status_has_one() -> None:
    hot = node("cam-c", "CAM_C", "centre")
    hot["status"]["cpu_temp_c"] = 81.5
    (r,) = fleet_rows(fleet(hot))
    assert r.temp == "82 °C" and "hot: 82 °C" in r.warnings


@pytest.mark.parametrize("width", [60, 80, 100, 140, 200])
def test_tables_never_exceed_the_terminal(width: int) -> None:
    long = node("cam-c-with-a-long-node-id", "CAM_C", "centre", recorder__state="idle")
    long["clock_flags"] = ["not following the master: chrony's source is none " * 3]
    body = fleet(node("cam-l", "CAM_L", "left"), long, node("cam-r", "CAM_R", "right"))
    console = Console(width=width, record=True, color_system=None)
    console.print(fleet_table(fleet_rows(body), 3, 3, console.width))
    recording = {
        "file_name": "20261201-202002-f4c7_CAM_C_20261201_202004.mp4",
        "session_id": "20261201-202002-f4c7",
        "node_id": "cam-c",
        "sha256": "ab" * 32,
        "size_bytes": 123456789,
        "archive_state": "none",
        "manifest": {"cam_id": "CAM_C", "frame_count": 900, "dropped_frames": 0},
    }
    console.print(recordings_view([recording], console.width))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    if width >= 80:  # a terminal of 80 holds the checksum whole on one line
        assert "ab" * 32 in text
    assert "CAM_C" in text and "recording" in text and "while" in text  # the warning (wrapped)


def test_start_sends_only_what_was_given() -> None:
    assert StartOptions().body() == {}
    assert StartOptions(name="kick-off", lead_ms=900, duration_s=5400.0).body() == {
        "name": "kick-off",
        "lead_ms": 900,
        "planned_duration_s": 5400.0,
    }
    assert StartOptions(node_ids=["cam-c"], all_or_nothing=True).body() == {
        "node_ids": ["cam-c"],
        "mode": "all_or_nothing",
    }
