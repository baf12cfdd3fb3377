"""The coordinator's relay of a node's settings and shutdown, end to end: a real
coordinator and agent on loopback, the operator's token, the node's 422 and 409 passed on
with its message, and a shutdown that reaches a fake ``systemctl``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from app.demo import stop_all
from tests.conftest import RunningFleet
from tests.fakebin import FakeBin
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def one_node(tmp_path: Path) -> Iterator[tuple[RunningFleet, FakeBin, Path]]:
    fake = FakeBin(tmp_path)
    systemctl = fake.add("systemctl")
    fake.add("sync")
    running = RunningFleet(root=tmp_path)
    try:
        running.start_coordinator()
        running.start_agent(
            "CAM_C",
            "centre",
            CAMFLEET_POWER__SHUTDOWN_COMMAND=json.dumps([str(systemctl), "poweroff"]),
            PATH=fake.env()["PATH"],
        )
        running.wait_online(1)
        yield running, fake, tmp_path / "CAM_C" / "agent.yaml"
    finally:
        stop_all(running.children(), timeout_s=20)


def test_the_coordinator_relays_config_and_shutdown(
    one_node: tuple[RunningFleet, FakeBin, Path],
) -> None:
    fleet, fake, own = one_node
    with fleet.client() as c, fleet.client(token="not-the-operator-token-at-all") as wrong:
        assert wrong.get("/api/v1/nodes/cam-c/config").status_code == 401
        assert wrong.post("/api/v1/nodes/cam-c/shutdown").status_code == 401
        assert c.get("/api/v1/nodes/cam-x/config").status_code == 404

        doc = c.get("/api/v1/nodes/cam-c/config")
        assert doc.status_code == 200, doc.text
        assert doc.json()["settings"]["fleet_token"] == "**********"
        assert fleet.fleet_token not in doc.text
        assert doc.json()["path"] == str(own)

        ok = c.put(
            "/api/v1/nodes/cam-c/config",
            json={"settings": {"gates": {"max_clock_error_ms": 3.5}}, "if_version": 0},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["applied"] == ["gates.max_clock_error_ms"]
        assert yaml.safe_load(own.read_text()) == {"gates": {"max_clock_error_ms": 3.5}}

        before = own.read_bytes()
        bad = c.put("/api/v1/nodes/cam-c/config", json={"settings": {"camera": {"fps": 0}}})
        assert bad.status_code == 422, bad.text
        assert "camera.fps" in bad.json()["detail"]
        assert [e["field"] for e in bad.json()["errors"]] == ["camera.fps"]
        stale = c.put(
            "/api/v1/nodes/cam-c/config",
            json={"settings": {"gates": {"max_clock_error_ms": 4}}, "if_version": 0},
        )
        assert stale.status_code == 409 and "version 1" in stale.json()["detail"]
        assert own.read_bytes() == before

        down = c.post("/api/v1/nodes/cam-c/shutdown")
        assert down.status_code == 202, down.text
        assert down.json()["accepted"] and down.json()["steps"][-1].endswith("poweroff")
        wait_for("poweroff", lambda: fake.argvs("systemctl"))
        assert [a[0] for a in fake.argvs()] == ["sync", "systemctl"]


def test_the_cli_reads_and_sets_a_real_nodes_settings(
    one_node: tuple[RunningFleet, FakeBin, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`camfleet config get|set` and `camfleet logs` against the real relay, not a stand-in."""
    from app import cli

    fleet, _, own = one_node
    base = ["--url", fleet.url, f"--token={fleet.operator_token}"]

    assert cli.main([*base, "config", "get", "cam-c", "gates.max_clock_error_ms"]) == 0
    assert capsys.readouterr().out == "5.0\n"

    assert cli.main([*base, "config", "set", "cam-c", "gates.max_clock_error_ms", "2.5"]) == 0
    out = capsys.readouterr().out
    assert "in effect now: gates.max_clock_error_ms" in out, out
    assert yaml.safe_load(own.read_text()) == {"gates": {"max_clock_error_ms": 2.5}}
    assert cli.main([*base, "config", "get", "cam-c", "gates.max_clock_error_ms"]) == 0
    assert capsys.readouterr().out == "2.5\n"

    before = own.read_bytes()
    assert cli.main([*base, "config", "set", "cam-c", "camera.fps", "0"]) == 2
    err = capsys.readouterr().err
    assert "camera.fps" in err, err
    assert own.read_bytes() == before

    assert cli.main([*base, "logs", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict | list)
