"""Is the agent that answers on the health URL the version we expect, and working?"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

# A unit seen inactive this many probes in a row has exited (or is crash-looping): no
# need to wait out the deadline for it.
INACTIVE_PROBES = 3


def probe(base_url: str, token: str, version: str, timeout_s: float = 3.0) -> str | None:
    """None when ``/health`` reports ``version`` and the self-test (an authenticated
    ``/api/v1/status`` whose recorder and version answer) passes; else why not."""
    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            health = client.get("/health")
            if health.status_code != 200:
                return f"/health answered HTTP {health.status_code}"
            got = health.json().get("version")
            if got != version:
                return f"/health reports version {got!r}, not {version!r}"
            status = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
            if status.status_code != 200:
                return f"self-test: /api/v1/status answered HTTP {status.status_code}"
            doc = status.json()
            if doc.get("version") != version or "recorder" not in doc:
                return "self-test: /api/v1/status is not the new version's full status"
    except (httpx.HTTPError, ValueError, AttributeError) as err:
        return f"no answer on {base_url}: {err.__class__.__name__}"
    return None


def wait_healthy(
    base_url: str,
    token: str,
    version: str,
    deadline_s: float,
    alive: Callable[[], bool] | None = None,
) -> str | None:
    """Probe until healthy (None) or the deadline passes (the last reason); ``alive``
    (is the unit running?) ends the wait early for an agent that exited."""
    end = time.monotonic() + deadline_s
    why: str | None = "not probed"
    inactive = 0
    while time.monotonic() < end:
        why = probe(base_url, token, version, timeout_s=min(3.0, max(0.5, end - time.monotonic())))
        if why is None:
            return None
        inactive = 0 if alive is None or alive() else inactive + 1
        if inactive >= INACTIVE_PROBES:
            return f"the agent is not running (it exited): {why}"
        time.sleep(0.3)
    return why


def recorder_busy(base_url: str, token: str) -> bool:
    """Whether the running agent is recording (armed, recording or stopping); an agent
    that does not answer is not recording."""
    try:
        with httpx.Client(base_url=base_url, timeout=3.0) as client:
            answer = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
            state = answer.json().get("recorder", {}).get("state")
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    return state in ("armed", "recording", "stopping")
