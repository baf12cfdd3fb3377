"""``python -m node_agent.audio.at AT_NS PROGRAM [ARG...]``: wait until the wall clock reads
``AT_NS``, print the instant it fired, then exec ``PROGRAM`` (aplay).

The start tone is due at the very instant the recorder starts encoding in the agent's own
process; a tone thread in that process then competes for the GIL with the recording
thread and was measured up to 12 ms late. Waiting in a small process of its own (started
well before the instant, through the agent's CommandRunner) leaves only exec between the
instant and aplay. The exec happens under SCHED_FIFO when allowed (the recorders that
start at the same instant would otherwise take the cores first, measured up to 29 ms);
aplay keeps it, which suits a player that mostly waits on the sound card.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from node_agent.recorder.schedule import REALTIME_PRIORITY, wait_until_ns


def main(argv: list[str]) -> int:
    """Wait, report the fired instant on stdout, exec the program; 2 on bad arguments."""
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m node_agent.audio.at AT_NS PROGRAM [ARG...]", file=sys.stderr)
        return 2
    at_ns = int(argv[0])
    # Real-time from before the instant through the exec (the wait drops it on return).
    fired = wait_until_ns(at_ns, threading.Event())
    assert fired is not None  # never cancelled
    with contextlib.suppress(OSError, AttributeError):  # not permitted, or not Linux
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    print(fired.wall_ns, flush=True)
    try:
        os.execvp(argv[1], argv[1:])
    except OSError as err:
        print(f"{argv[1]}: {err}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
