"""The one way the agent runs another program: logged, timed out, and dry-runnable.

Power, USB and the dashcam act on the machine through programs (``uhubctl``, the
seed's control scripts, ``mount``, ``rsync``, ``systemctl poweroff``). Every such call
goes through a ``CommandRunner``, so that:

- each call is logged with its arguments (``would run:`` under ``--dry-run``, where
  nothing is executed and every call answers as if it had succeeded);
- a program that hangs is killed after its time-out and reported, never waited on
  forever;
- a missing program is an answer (``returncode`` 127, the shell's "not found"), not an
  exception, so a caller decides what a failure means;
- the last calls are kept (``journal``) for the status page and for tests that check
  the order of what was done.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

NOT_FOUND = 127  # what a shell answers for a program it cannot find
TIMED_OUT = 124  # what timeout(1) answers
MAX_OUTPUT = 64 * 1024  # kept of a program's stdout and stderr (each)


@dataclass(frozen=True)
class Completed:
    """What one call did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """Whether the program exited 0 (always, under dry-run)."""
        return self.returncode == 0

    def describe(self) -> str:
        """``uhubctl -l 1-1 -p 1 -a 0: exit 1: <the last line of stderr>``."""
        text = shlex.join(self.argv)
        if self.ok:
            return f"{text}: ok"
        last = (self.stderr.strip() or self.stdout.strip()).splitlines()[-1:] or [""]
        if self.returncode == NOT_FOUND:
            return f"{text}: not found"
        if self.returncode == TIMED_OUT:
            return f"{text}: timed out after {self.duration_s:.1f} s"
        return f"{text}: exit {self.returncode}: {last[0][:200]}"


class CommandFailed(RuntimeError):
    """A call that had to succeed did not; the message says which and why."""

    def __init__(self, done: Completed) -> None:
        super().__init__(done.describe())
        self.done = done


@dataclass
class CommandRunner:
    """Runs programs for the agent (see the module docstring).

    ``dry_run``: log each call and answer ``Completed(returncode=0, dry_run=True)``
    without running it. ``env``: extra environment for every call.
    """

    dry_run: bool = False
    default_timeout_s: float = 30.0
    env: Mapping[str, str] | None = None
    journal_size: int = 100
    quiet: bool = False  # log calls and failures at debug level (a poll every few seconds)
    journal: deque[Completed] = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.journal = deque(maxlen=self.journal_size)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float | None = None,
        input_text: str | None = None,
        check: bool = False,
        mutates: bool = True,
    ) -> Completed:
        """Run ``argv`` (never through a shell) and return what it did.

        ``check``: raise ``CommandFailed`` unless it exited 0. ``mutates=False`` marks a
        call that only reads (``lifepo4wered-cli get``, ``ssh ... sha256sum``): it runs
        even under dry-run, since a plan that cannot read the battery is no plan.
        """
        args = tuple(str(a) for a in argv)
        if self.dry_run and mutates:
            log.info("would run: %s", shlex.join(args))
            done = Completed(args, 0, dry_run=True)
            self._note(done)
            return done
        log.log(logging.DEBUG if self.quiet else logging.INFO, "run: %s", shlex.join(args))
        env = None if self.env is None else {**os.environ, **self.env}
        t0 = time.monotonic()
        limit = self.default_timeout_s if timeout_s is None else timeout_s
        try:
            proc = subprocess.run(
                args,
                input=input_text,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=limit,
                env=env,
                check=False,
            )
            done = Completed(
                args,
                proc.returncode,
                proc.stdout[-MAX_OUTPUT:],
                proc.stderr[-MAX_OUTPUT:],
                time.monotonic() - t0,
            )
        except FileNotFoundError as err:
            done = Completed(args, NOT_FOUND, "", str(err), time.monotonic() - t0)
        except PermissionError as err:
            done = Completed(args, 126, "", str(err), time.monotonic() - t0)
        except subprocess.TimeoutExpired as err:
            out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else ""
            done = Completed(args, TIMED_OUT, out, "", time.monotonic() - t0)
        if not done.ok:
            log.log(logging.DEBUG if self.quiet else logging.WARNING, "%s", done.describe())
        self._note(done)
        if check and not done.ok:
            raise CommandFailed(done)
        return done

    def recent(self) -> list[Completed]:
        """The last calls, oldest first."""
        with self._lock:
            return list(self.journal)

    def _note(self, done: Completed) -> None:
        with self._lock:
            self.journal.append(done)
