"""A stand-in for picamera2.job: work the camera event loop finishes on a later frame.

Same shape as the real class: a list of stage functions, each returning
``(done, result)``; a concurrent.futures.Future carries the final result; the
signal function is called with the job once it is finished.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Job(Generic[T]):
    """An operation the event loop performs, possibly over several frames."""

    def __init__(
        self,
        functions: list[Callable[[], tuple[bool, Any]]],
        signal_function: Callable[[Job[T]], None] | None = None,
    ) -> None:
        self._functions = functions
        self._future: Future[T] = Future()
        self._future.set_running_or_notify_cancel()
        self._signal_function = signal_function
        self._result: Any = None
        self.calls = 0

    def execute(self) -> bool:
        """Run stages until one is not done yet; True when every stage is done."""
        assert self._functions, "Job already completed!"
        try:
            result: Any = None
            while self._functions:
                done, result = self._functions[0]()
                self.calls += 1
                if not done:
                    break
                self._functions.pop(0)
            if not self._functions:
                self._result = result
        except Exception as err:
            self._future.set_exception(err)
            self._functions = []
        return not self._functions

    def signal(self) -> None:
        """The job is finished: publish its result, then call the signal function."""
        assert not self._functions, "Job not finished!"
        if not self._future.done():
            self._future.set_result(self._result)
        if self._signal_function:
            self._signal_function(self)

    def get_result(self, timeout: float | None = None) -> T:
        """The final result, waiting up to ``timeout`` (concurrent.futures.TimeoutError)."""
        return self._future.result(timeout=timeout)

    def cancel(self) -> None:
        """Make get_result raise CancelledError (use Picamera2.cancel_all_and_flush)."""
        self._future.set_exception(CancelledError())
