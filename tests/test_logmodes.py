"""The log ring, the JSON formatter and the mode file, in this process."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.logmodes import (
    JsonFormatter,
    LogControl,
    LoggingSettings,
    RingHandler,
    read_mode_file,
    write_mode_file,
)


@pytest.fixture
def ring_logger() -> Iterator[tuple[logging.Logger, RingHandler]]:
    logger = logging.getLogger("tests.logmodes.ring")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    ring = RingHandler(size=10)
    logger.addHandler(ring)
    try:
        yield logger, ring
    finally:
        logger.removeHandler(ring)
        logger.propagate = True


def test_info_never_pushes_a_warning_out(ring_logger: tuple[logging.Logger, RingHandler]) -> None:
    logger, ring = ring_logger
    logger.warning("disk %s is slow", "sda")
    for i in range(100):
        logger.info("chatter %d", i)
    everything = ring.entries(5000)
    assert len(everything) == 11  # the warning and the last 10 below WARNING
    assert everything[0].message == "disk sda is slow"
    assert [e.message for e in everything[1:]] == [f"chatter {i}" for i in range(90, 100)]
    assert [e.message for e in ring.entries(5000, "WARNING")] == ["disk sda is slow"]
    assert [e.message for e in ring.entries(2)] == ["chatter 98", "chatter 99"]


def test_order_is_by_arrival_across_both_halves(
    ring_logger: tuple[logging.Logger, RingHandler],
) -> None:
    logger, ring = ring_logger
    logger.info("a")
    logger.error("b")
    logger.debug("c")
    logger.critical("d")
    assert [(e.level, e.message) for e in ring.entries(10)] == [
        ("INFO", "a"),
        ("ERROR", "b"),
        ("DEBUG", "c"),
        ("CRITICAL", "d"),
    ]
    assert [e.message for e in ring.entries(10, "ERROR")] == ["b", "d"]


def test_a_bad_format_string_is_kept_not_raised(
    ring_logger: tuple[logging.Logger, RingHandler],
) -> None:
    _, ring = ring_logger
    # straight to the handler: pytest's own capture handler would raise on it
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "two %s %s", ("one",), None)
    ring.handle(record)
    (entry,) = ring.entries(1)
    assert "did not format" in entry.message


def test_json_formatter_is_one_object_a_line_with_the_traceback() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        record = logging.LogRecord("x.y", logging.ERROR, __file__, 1, "failed: %s", ("it",), None)
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "ERROR" and data["logger"] == "x.y"
    assert data["message"] == "failed: it"
    assert "ValueError: boom" in data["exc"]
    assert data["time"].endswith("+00:00")


def test_mode_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    assert read_mode_file(tmp_path) is None
    write_mode_file(tmp_path, "development")
    assert read_mode_file(tmp_path) == "development"
    assert [p.name for p in tmp_path.iterdir()] == ["mode.json"]  # no temporary left
    for bad in ("{not json", '{"mode": "loud"}', "[1, 2]"):
        (tmp_path / "mode.json").write_text(bad)
        assert read_mode_file(tmp_path) is None


def test_a_bad_mode_file_is_ignored_with_a_warning_in_the_ring(tmp_path: Path) -> None:
    (tmp_path / "mode.json").write_text('{"mode": "loud"}')
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    control = LogControl("t", tmp_path, LoggingSettings(dir=tmp_path / "logs"), "production")
    try:
        control.install()
        assert control.mode == "production"
        messages = [e.message for e in control.ring.entries(50, "WARNING")]
        assert any("mode 'loud' is not production or development" in m for m in messages)
        assert not (tmp_path / "logs").exists()
    finally:
        for handler in list(root.handlers):
            if handler not in before[0]:
                root.removeHandler(handler)
        root.setLevel(before[1])


def test_a_long_message_is_cut_in_the_ring(
    ring_logger: tuple[logging.Logger, RingHandler],
) -> None:
    logger, ring = ring_logger
    logger.warning("%s", "x" * 100_000)
    (entry,) = ring.entries(1)
    assert entry.message.startswith("x" * 4096)
    assert entry.message.endswith("... (100000 characters)")
