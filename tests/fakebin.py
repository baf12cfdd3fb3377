"""Fake executables on PATH that record their calls: the stand-ins at the process boundary
for uhubctl, lifepo4wered-cli, the seed's control scripts, systemctl and shutdown.

``FakeBin(tmp_path).add("uhubctl", stdout=..., exit_code=...)`` writes an executable that
appends one JSON line ``{"argv": [...], "t": <unix time>, "t_ns": <the exec instant>}`` to
``calls.jsonl`` (``t_ns`` is taken from bash's ``$EPOCHREALTIME`` as the script's first command, before
the Python that writes the line has started: the instant the program was run) and prints
``stdout``. ``script`` gives a shell body instead (``$FAKEBIN_LOG`` is the log). ``calls()``
reads the log back, every tool's calls in the order they happened.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

_RECORD = (
    '"$FAKE_PYTHON" -c \'import json,sys,time; '
    'open(sys.argv[1],"a").write(json.dumps({"argv":sys.argv[3:],"t":time.time(),'
    '"t_ns":int(sys.argv[2])})+"\\n")\' '
    '"$FAKEBIN_LOG" "$FAKEBIN_T0" "$(basename "$0")" "$@"'
)


class FakeBin:
    """A folder of fake programs and the log of their calls."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "fakebin"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = root / "fakebin-calls.jsonl"
        self.log.touch()

    def add(
        self,
        name: str,
        stdout: str = "",
        exit_code: int = 0,
        script: str | None = None,
    ) -> Path:
        """Write the fake ``name``; returns its path."""
        path = self.dir / name
        body = (
            script
            if script is not None
            else (f"printf '%s' {shlex.quote(stdout)}\nexit {exit_code}")
        )
        path.write_text(
            "#!/bin/bash\n"
            # bash's own clock (microseconds): no fork of date(1) before the stamp
            'FAKEBIN_T0="${EPOCHREALTIME/./}000"\n'
            f"FAKEBIN_LOG={shlex.quote(str(self.log))}\n"
            f"FAKE_PYTHON={shlex.quote(sys.executable)}\n"
            "export FAKEBIN_LOG FAKE_PYTHON\n"
            f"{_RECORD}\n{body}\n"
        )
        path.chmod(0o755)
        return path

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment whose PATH finds the fakes first."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every recorded call (``{"argv": [name, *args], "t": ...}``), oldest first."""
        out = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [c for c in out if name is None or c["argv"][0] == name]

    def argvs(self, name: str | None = None) -> list[list[str]]:
        """Just the argument lists, ``[name, *args]``."""
        return [c["argv"] for c in self.calls(name)]
