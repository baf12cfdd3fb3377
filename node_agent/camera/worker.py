"""Blocking camera calls with a deadline: one worker thread per camera, or a helper thread.

A call that never returns (a driver stuck in the kernel) cannot be killed from
Python: it is abandoned in its daemon thread, and the caller gets a CameraError.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from node_agent.camera.protocol import CameraError

T = TypeVar("T")


class CaptureTimeout(CameraError):
    """The camera did not answer within its deadline."""


def stuck_message(what: str, timeout_s: float) -> str:
    """A named camera call (``starting the Pi camera``) that overran its deadline."""
    return (
        f"{what} did not finish within {timeout_s:g} s; the camera or its driver "
        "is stuck (`dmesg` may say why)"
    )


def result_within(future: Future[T], timeout_s: float, what: str, message: str | None = None) -> T:
    """``future``'s result; CaptureTimeout (``message``, else ``stuck_message``) when it has
    not come within ``timeout_s``."""
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        raise CaptureTimeout(message or stuck_message(what, timeout_s)) from None


def call_with_deadline(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """``fn()`` in a helper thread; CaptureTimeout when it has not returned in ``timeout_s``.

    A call that times out is left running in its (daemon) thread: a camera library
    stuck in the kernel cannot be interrupted, only abandoned.
    """
    future: Future[T] = Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as err:  # handed to the caller, who decides
            future.set_exception(err)

    threading.Thread(target=target, name=f"camera-{what}", daemon=True).start()
    # Named by the call alone (``still``, ``open``): the camera did not answer it.
    message = f"the camera did not answer ({what}) within {timeout_s:g} s"
    return result_within(future, timeout_s, what, message)


class CameraWorker:
    """One daemon thread that runs a camera's blocking calls, in order.

    Callers wait on each call's Future with a deadline. A call that never returns (a
    driver stuck in the kernel) cannot be killed from Python: the thread stays blocked
    in it, calls queued behind it never run, and being a daemon it does not keep the
    agent from exiting. The camera it holds stays held until the agent restarts.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None]
        self._calls = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as err:  # handed to whoever waits on the future
                future.set_exception(err)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn``; its Future holds the result or the exception."""
        future: Future[T] = Future()
        self._calls.put((fn, future))
        return future

    def call(self, fn: Callable[[], T], timeout_s: float, what: str) -> T:
        """``fn()`` on the worker; CameraError when it takes longer than ``timeout_s``."""
        return result_within(self.submit(fn), timeout_s, what)

    def stop(self) -> None:
        """The thread ends after the calls already queued."""
        self._calls.put(None)

    def is_alive(self) -> bool:
        """Whether the thread still runs (a stuck call keeps it alive)."""
        return self._thread.is_alive()
