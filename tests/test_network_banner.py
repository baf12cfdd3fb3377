"""The dashboard banner's AP line (``apText`` in dashboard.js), run by node as written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).parent.parent / "app" / "web" / "static" / "dashboard.js"


def ap_text(cam: str, net: dict[str, object]) -> str:
    source = JS.read_text()
    label = re.search(r"^const NET_LABEL = .*;$", source, re.M)
    fn = re.search(r"^function apText\(cam, net\) \{.*?^\}$", source, re.M | re.S)
    assert label and fn, "dashboard.js lost NET_LABEL or apText"
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (.ci/run installs it)")
    script = f"{label.group(0)}\n{fn.group(0)}\nprocess.stdout.write(apText({json.dumps(cam)}, {json.dumps(net)}));"
    return subprocess.run(
        [node, "-e", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_the_banner_names_the_ap_and_who_hosts_or_joined_it() -> None:
    assert ap_text("CAM_C", {"mode": "ap_host", "ssid": "SOCCER_CAM_C"}) == (
        "CAM_C hosting SOCCER_CAM_C"
    )
    assert ap_text("CAM_L", {"mode": "ap_client", "ssid": "SOCCER_CAM_C", "signal": 62}) == (
        "CAM_L on SOCCER_CAM_C (62 %)"
    )
    # an older agent without the SSID: the mode, as before
    assert ap_text("CAM_R", {"mode": "ap_host"}) == "CAM_R (AP (hosting))"
    got = ap_text(
        "CAM_R",
        {"mode": "ap_host", "ssid": "SOCCER_CAM_R", "manager": {"last_error": "join FieldMesh: x"}},
    )
    assert got == "CAM_R hosting SOCCER_CAM_R; last error: join FieldMesh: x"
