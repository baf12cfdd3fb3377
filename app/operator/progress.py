"""How a footage command shows its progress: rich bars on a terminal, plain lines elsewhere,
nothing at all with ``--json`` (the one JSON object is the output)."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column
from rich.text import Text


class Display(Protocol):
    """One line (or bar) per file, and a total."""

    def add(self, key: str, label: str, total_bytes: int) -> None: ...

    def update(self, key: str, done_bytes: int) -> None: ...

    def finish(self, key: str, line: str, ok: bool) -> None: ...

    def note(self, line: str) -> None: ...

    def close(self) -> None: ...


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class Quiet:
    """``--json``: nothing but the final object."""

    def add(self, key: str, label: str, total_bytes: int) -> None:
        pass

    def update(self, key: str, done_bytes: int) -> None:
        pass

    def finish(self, key: str, line: str, ok: bool) -> None:
        pass

    def note(self, line: str) -> None:
        pass

    def close(self) -> None:
        pass


class Lines:
    """Not a terminal: one line when a file starts and one when it ends."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def _print(self, line: str) -> None:
        with self.lock:
            print(line, file=self.stream, flush=True)

    def add(self, key: str, label: str, total_bytes: int) -> None:
        self._print(f"{label} ({human_bytes(total_bytes)})")

    def update(self, key: str, done_bytes: int) -> None:
        pass

    def finish(self, key: str, line: str, ok: bool) -> None:
        self._print(line)

    def note(self, line: str) -> None:
        self._print(line)

    def close(self) -> None:
        pass


class Bars:
    """A terminal: one bar per file plus a total, with transfer speed and time left."""

    def __init__(self, console: Console) -> None:
        # The name shrinks (with an ellipsis) before the figures wrap on a narrow terminal.
        name = Column(ratio=3, no_wrap=True, overflow="ellipsis", min_width=12)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False, table_column=name),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=8)),
            DownloadColumn(table_column=Column(no_wrap=True)),
            TransferSpeedColumn(table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            console=console,
            expand=True,
        )
        self.tasks: dict[str, TaskID] = {}
        self.done: dict[str, int] = {}
        self.lock = threading.Lock()
        self.total = self.progress.add_task("total", total=0)
        self.progress.start()

    def add(self, key: str, label: str, total_bytes: int) -> None:
        with self.lock:
            self.tasks[key] = self.progress.add_task(label, total=total_bytes)
            self.done[key] = 0
            grand = self.progress.tasks[self.total].total or 0
            self.progress.update(self.total, total=grand + total_bytes)

    def update(self, key: str, done_bytes: int) -> None:
        with self.lock:
            self.progress.update(self.tasks[key], completed=done_bytes)
            self.done[key] = done_bytes
            self.progress.update(self.total, completed=sum(self.done.values()))

    def finish(self, key: str, line: str, ok: bool) -> None:
        self.progress.console.print(Text(line, style="" if ok else "red"))

    def note(self, line: str) -> None:
        self.progress.console.print(Text(line))

    def close(self) -> None:
        self.progress.stop()


def make_display(json_output: bool, stream: IO[str] | None = None) -> Display:
    """Bars when ``stream`` (stdout) is a terminal, lines when not, silence for ``--json``."""
    out = stream or sys.stdout
    if json_output:
        return Quiet()
    if out.isatty():
        return Bars(Console(file=out))
    return Lines(out)


class Rate:
    """Bytes over wall time since it was made (for the per-file line)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def seconds(self) -> float:
        return time.monotonic() - self.t0

    def describe(self, n_bytes: int) -> str:
        s = self.seconds()
        speed = f", {human_bytes(n_bytes / s)}/s" if s > 0 and n_bytes else ""
        return f"{human_bytes(n_bytes)} in {s:.1f} s{speed}"
