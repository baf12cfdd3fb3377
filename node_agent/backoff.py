"""The one backoff: how long to wait before retrying after ``n`` failures in a row."""

from __future__ import annotations

import random
from typing import Literal

Jitter = Literal["spread", "add"]


def backoff_s(
    failures: int,
    base_s: float,
    max_s: float,
    *,
    jitter: Jitter = "spread",
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after ``failures`` consecutive failures (1, 2, ...): doubling from
    ``base_s``, at most ``max_s``.

    ``spread`` takes a random point in the upper half of the capped delay, so many
    nodes restarted together do not retry in step (the coordinator link). ``add``
    adds up to one second to the exact doubling, keeping the sequence readable in logs
    (the camera's reconnect: 5, 10, 20, ... 300 s for base 5 s and max 300 s).
    """
    if failures < 1:
        raise ValueError("failures counts from 1")
    draw = rng or random  # the module's functions share one hidden Random
    # Past 2**30 the cap has long been reached; the exponent is bounded to keep it a float.
    delay = base_s * 2.0 ** min(failures - 1, 30)
    if jitter == "spread":
        return float(draw.uniform(0.5, 1.0) * min(max_s, delay))
    return min(delay + draw.uniform(0.0, 1.0), max_s)
