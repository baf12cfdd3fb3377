"""Capture the golden chronyc files in tests/fixtures/chrony/ from real daemons.

    python -m tests.capture_chrony_fixtures   (as root: chronyd -u root)

A chronyd -x master and client on loopback (tests/chrony.py): the client and the master
synchronised; the client after the master was killed (its source unreachable); a master
whose upstream server does not answer (it serves its own clock all the same).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.chrony import ChronyPair, _free_udp_port, chrony_pair

FIXTURES = Path(__file__).parent / "fixtures" / "chrony"
REPORTS = ("tracking", "sources", "sourcestats")


def save(pair: ChronyPair, which: str, name: str) -> None:
    for report in REPORTS:
        (FIXTURES / f"{name}_{report}.csv").write_text(pair.chronyc(which, report))
        print(f"wrote {name}_{report}.csv", file=sys.stderr)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with chrony_pair(Path(tmp) / "a") as pair:
            pair.wait("no full reach", lambda: ",377," in pair.chronyc("client", "sources"), 30)
            save(pair, "client", "client_synced")
            save(pair, "server", "master_synced")
            pair.kill_master()
            pair.wait(
                "the source did not turn unreachable",
                lambda: pair.chronyc("client", "sources").startswith("^,?,"),
                60,
            )
            save(pair, "client", "client_master_killed")
        with chrony_pair(Path(tmp) / "b", master_upstream=_free_udp_port()) as pair:
            pair.wait(
                "the master's upstream not polled",
                lambda: pair.chronyc("server", "sources").startswith("^,?,"),
                30,
            )
            save(pair, "server", "master_upstream_unreachable")


if __name__ == "__main__":
    main()
