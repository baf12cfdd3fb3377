"""Production and development modes: what each program keeps of its logs.

Both programs (agent and coordinator) install one ``LogControl`` on the root logger:

* **production** (the default): an in-memory ring only. It keeps the last
  ``RING_SIZE`` records at WARNING and above and, separately, the last ``RING_SIZE``
  below WARNING (so a chatty INFO stream never pushes an error out). No log file is
  opened and no access log is written.
* **development**: the same ring, plus JSON lines (one object per record: time, level,
  logger, message and, for an exception, its traceback) in ``logging.dir/<name>.jsonl``,
  rotated by size (``max_bytes``, ``backups``).

The mode is switched at run time (``set_mode``) and kept in ``data_dir/mode.json``
(written atomically: temp + fsync + rename), which overrides the ``mode`` setting at
the next start.

Cost per log call, measured on the development machine (2 shared cores, Python 3.11,
20,000 calls of ``log.info("x %s", i)``, median of 5 runs): the logging call itself
(a LogRecord made, no handler) takes about 10 microseconds; the ring adds about 3
(the message formatted once, a tuple appended to a deque; entries are built only when
read); a record below the level costs 0.4 in all. Development mode's JSON file adds
about 50 (format, write, flush). INFO is therefore kept in the ring too, in its own
half so that it never pushes a warning out.
"""

from __future__ import annotations

import itertools
import json
import logging
import logging.handlers
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from common.fsutil import atomic_write_bytes

Mode = Literal["production", "development"]
Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
MODES: tuple[Mode, ...] = ("production", "development")
RING_SIZE = 500
MAX_MESSAGE = 4096  # characters of a message the ring keeps: at most ~4 MB in all
MODE_FILE = "mode.json"

log = logging.getLogger(__name__)

# sequence, created, levelno, logger, message
_Kept = tuple[int, float, int, str, str]


class LoggingSettings(BaseModel):
    """Where development mode writes its logs, and how much it keeps."""

    model_config = ConfigDict(extra="forbid")

    dir: Path | None = Field(
        default=None, description="Folder of the JSON-lines logs; default data_dir/logs."
    )
    max_bytes: int = Field(
        default=10_000_000, ge=1024, le=1_000_000_000, description="Rotate a file past this."
    )
    backups: int = Field(default=5, ge=1, le=100, description="Rotated files kept.")
    level: Level = Field(default="INFO", description="The lowest level kept (ring and file).")


class LogEntry(BaseModel):
    """One log record as ``GET /api/v1/logs`` shows it."""

    time: str = Field(description="UTC, ISO 8601 with milliseconds")
    level: str
    logger: str
    message: str


class LogList(BaseModel):
    """Recent records, oldest first (newest last)."""

    mode: Mode
    entries: list[LogEntry]


class ModeChange(BaseModel):
    """``PUT /api/v1/mode``."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode


class ModeState(BaseModel):
    """The mode in force and where development mode writes (null in production)."""

    mode: Mode
    log_file: str | None = None


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RingHandler(logging.Handler):
    """The last ``size`` WARNING+ records and the last ``size`` below WARNING.

    A record is kept as a plain tuple (the message formatted once); entries are built
    only when read.
    """

    def __init__(self, size: int = RING_SIZE) -> None:
        super().__init__()
        self._seq = itertools.count()
        self._high: deque[_Kept] = deque(maxlen=size)
        self._low: deque[_Kept] = deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller
            message = f"{record.msg!r} (args {record.args!r} did not format)"
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + f"... ({len(message)} characters)"
        kept = (next(self._seq), record.created, record.levelno, record.name, message)
        # deque.append and next() on a count are atomic under the GIL: no lock needed
        (self._high if record.levelno >= logging.WARNING else self._low).append(kept)

    def entries(self, lines: int, level: Level = "DEBUG") -> list[LogEntry]:
        """The newest ``lines`` records at ``level`` or above, oldest first."""
        floor = logging.getLevelNamesMapping()[level]
        merged = sorted([*self._high.copy(), *self._low.copy()], key=lambda kept: kept[0])
        chosen = [k for k in merged if k[2] >= floor][-lines:]
        return [
            LogEntry(
                time=_iso(created), level=logging.getLevelName(levelno), logger=name, message=msg
            )
            for _, created, levelno, name, msg in chosen
        ]


def read_mode_file(data_dir: Path) -> Mode | None:
    """The mode kept in ``data_dir/mode.json``; None when absent or unreadable (logged)."""
    path = data_dir / MODE_FILE
    try:
        value = json.loads(path.read_text()).get("mode")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as err:
        log.warning("ignoring %s: %s", path, err)
        return None
    if value not in MODES:
        log.warning("ignoring %s: mode %r is not production or development", path, value)
        return None
    mode: Mode = value
    return mode


def write_mode_file(data_dir: Path, mode: Mode) -> None:
    """Keep ``mode`` for the next start (atomically)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"mode": mode, "set_at": _iso(time.time())}) + "\n"
    atomic_write_bytes(data_dir / MODE_FILE, body.encode())


class LogControl:
    """The ring and (in development) the rotating JSON file on the root logger."""

    def __init__(self, name: str, data_dir: Path, settings: LoggingSettings, mode: Mode) -> None:
        self.name = name
        self.data_dir = data_dir
        self.settings = settings
        self.ring = RingHandler()
        self._file: _JsonFileHandler | None = None
        self._guard = threading.Lock()
        self.mode: Mode = mode  # until install() has read data_dir/mode.json
        self._loggers = [logging.getLogger()]  # root, and what adopt() adds

    @property
    def log_path(self) -> Path:
        """Development mode's current file."""
        folder = self.settings.dir or self.data_dir / "logs"
        return folder / f"{self.name}.jsonl"

    def install(self) -> None:
        """Attach to the root logger (replacing a previous LogControl's handlers)."""
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, RingHandler | _JsonFileHandler | _StderrHandler):
                root.removeHandler(handler)
                if isinstance(handler, _JsonFileHandler):
                    handler.retire()
                handler.close()
        root.setLevel(self.settings.level)
        root.addHandler(self.ring)
        # What Python printed before a handler was installed (its last resort): warnings
        # and errors on stderr, for the service manager's journal. Not a file of ours.
        stderr = _StderrHandler()
        stderr.setLevel(logging.WARNING)
        stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stderr)
        # read with the handlers in place, so that a bad file's warning is in the ring
        self.mode = read_mode_file(self.data_dir) or self.mode
        try:
            self._apply()
        except OSError as err:  # the program runs on: a camera records without a log file
            log.error("development mode cannot write %s (%s): production mode", self.log_path, err)
            self.mode = "production"

    def adopt(self, name: str) -> None:
        """Also keep the records of logger ``name``, which does not propagate to the root.

        uvicorn's ("uvicorn.error": an exception in a request, a malformed request) is
        configured by uvicorn after the app is built: adopt it in the lifespan.
        """
        logger = logging.getLogger(name)
        with self._guard:
            if logger in self._loggers:
                return
            self._loggers.append(logger)
            for handler in list(logger.handlers):  # a previous LogControl's
                if isinstance(handler, RingHandler | _JsonFileHandler):
                    logger.removeHandler(handler)
            logger.addHandler(self.ring)
            if self._file is not None:
                logger.addHandler(self._file)

    def set_mode(self, mode: Mode) -> ModeState:
        """Switch now and keep the choice for the next start.

        OSError (nothing changed, nothing kept) when development mode cannot open its
        file or the mode file cannot be written.
        """
        previous, self.mode = self.mode, mode
        try:
            self._apply()
            write_mode_file(self.data_dir, mode)
        except OSError:
            self.mode = previous
            self._apply()  # back as it was (closing a file only just opened)
            raise
        if previous != mode:
            log.warning("%s mode: %s (was %s)", self.name, mode, previous)
        return self.state()

    def state(self) -> ModeState:
        """The mode and the file being written, if any."""
        return ModeState(
            mode=self.mode, log_file=str(self.log_path) if self.mode == "development" else None
        )

    def _apply(self) -> None:
        with self._guard:
            if self.mode == "development" and self._file is None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._file = _JsonFileHandler(
                    self.log_path,
                    maxBytes=self.settings.max_bytes,
                    backupCount=self.settings.backups,
                    encoding="utf-8",
                )
                self._file.setFormatter(JsonFormatter())
                for logger in self._loggers:
                    logger.addHandler(self._file)
            elif self.mode == "production" and self._file is not None:
                for logger in self._loggers:
                    logger.removeHandler(self._file)
                self._file.retire()
                self._file = None


class _JsonFileHandler(logging.handlers.RotatingFileHandler):
    """Development mode's file (its own class so ``install`` can find and replace it).

    Once retired it writes nothing: a FileHandler that is emitted to after ``close``
    (a record on another thread at the moment of the switch) would reopen its file.
    """

    retired = False

    def retire(self) -> None:
        """Close for good."""
        self.retired = True
        self.close()

    def emit(self, record: logging.LogRecord) -> None:
        if not self.retired:
            super().emit(record)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Warnings and errors on stderr, in both modes."""
