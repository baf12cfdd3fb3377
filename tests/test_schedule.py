"""The scheduled start: never early, cancellable, real-time when the system allows it."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time

import pytest

from node_agent.recorder.schedule import wait_until_ns

PROBE = """
import json, threading, time
from node_agent.recorder.schedule import wait_until_ns
deadline = time.time_ns() + 100_000_000
fired = wait_until_ns(deadline, threading.Event())
print(json.dumps({"early_ns": deadline - fired.wall_ns, "realtime": fired.realtime}))
"""


def test_fires_at_the_deadline_never_before() -> None:
    for _ in range(5):
        deadline = time.time_ns() + 60_000_000
        fired = wait_until_ns(deadline, threading.Event())
        assert fired is not None
        assert fired.wall_ns >= deadline


def test_cancel_returns_promptly() -> None:
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    t0 = time.monotonic()
    assert wait_until_ns(time.time_ns() + 10_000_000_000, cancel) is None
    assert time.monotonic() - t0 < 1.0


def run_probe(drop_sys_nice: bool, rtprio: int | None = None) -> dict[str, object]:
    """Run one scheduled wait in a fresh process, optionally without CAP_SYS_NICE."""
    cmd = [sys.executable, "-c", PROBE]
    if drop_sys_nice:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is not installed")
        cmd = [setpriv, "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", *cmd]
    if rtprio is not None:
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
            resource.setrlimit(resource.RLIMIT_RTPRIO, (soft, max(hard, rtprio)))
            resource.setrlimit(resource.RLIMIT_RTPRIO, (soft, hard))
        except (ValueError, OSError):
            pytest.skip("this machine cannot raise RLIMIT_RTPRIO (no CAP_SYS_RESOURCE)")
    done = subprocess.run(
        cmd,
        preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_RTPRIO, (rtprio, rtprio)))
        if rtprio is not None
        else None,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.skipif(os.geteuid() != 0, reason="root holds CAP_SYS_NICE")
def test_the_last_stretch_runs_real_time_when_allowed() -> None:
    probe = run_probe(drop_sys_nice=False)
    assert probe["realtime"] is True and int(str(probe["early_ns"])) <= 0


def test_without_the_right_it_falls_back_and_is_still_never_early() -> None:
    probe = run_probe(drop_sys_nice=True)
    assert probe["realtime"] is False and int(str(probe["early_ns"])) <= 0


def test_rlimit_rtprio_grants_real_time_without_privileges() -> None:
    # What the systemd unit's LimitRTPRIO=10 gives the unprivileged camfleet user.
    probe = run_probe(drop_sys_nice=True, rtprio=10)
    assert probe["realtime"] is True and int(str(probe["early_ns"])) <= 0
