"""A clock shifted by a known offset, for one node's agent and chronyd (libfaketime).

``LD_PRELOAD`` of Debian's libfaketime with ``FAKETIME="+0.020000"`` moves what
``clock_gettime(CLOCK_REALTIME)`` returns by 20 ms; ``FAKETIME_DONT_FAKE_MONOTONIC=1``
leaves the monotonic clock alone. chronyd also gets ``no_kernel_timestamps.so`` (built
here from bench/native), without which it would take the kernel's unshifted packet
timestamps, and every shifted process gets ``monotonic_sleep.so`` first in
``LD_PRELOAD`` (libfaketime fails sleeps on the monotonic clock it leaves alone: see
bench/native/monotonic_sleep.c). ``verify_python`` checks the shift a preloaded Python sees against the raw
``clock_gettime`` system call, which libfaketime cannot intercept.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import BenchError

NATIVE = Path(__file__).resolve().parent / "native"
SHIM_SOURCE = NATIVE / "no_kernel_timestamps.c"
SLEEP_SOURCE = NATIVE / "monotonic_sleep.c"

# Run with the shifted environment: prints the faked minus the true wall clock, in ns.
_PROBE = """
import ctypes, json, subprocess, time
time.sleep(0.001)  # raises EINVAL where the sleep shim is missing
subprocess.run(["true"], timeout=5)  # the agent's chronyc call waits the same way
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
libc = ctypes.CDLL(None, use_errno=True)
SYS_clock_gettime = {"x86_64": 228, "aarch64": 113}[__import__("platform").machine()]
def raw():
    t = TS(); libc.syscall(SYS_clock_gettime, 0, ctypes.byref(t)); return t.s * 10**9 + t.ns
best = None
for _ in range(50):
    a = raw(); b = time.time_ns(); c = raw()
    if best is None or c - a < best[0]:
        best = (c - a, b - (a + c) // 2)
print(json.dumps({"shift_ns": best[1], "window_ns": best[0]}))
"""


def libfaketime() -> Path | None:
    """Debian's libfaketime.so.1 (found by ``dpkg -L`` or a glob), or None."""
    try:
        listed = subprocess.run(
            ["dpkg", "-L", "libfaketime"], capture_output=True, text=True, timeout=10
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        listed = []
    candidates = [p for p in listed if p.endswith("/libfaketime.so.1")]
    candidates += sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    candidates += sorted(glob.glob("/usr/local/lib/faketime/libfaketime.so.1"))
    for c in candidates:
        if Path(c).is_file():
            return Path(c)
    return None


def unavailable() -> str | None:
    """Why shifted clocks cannot be made here (None: they can)."""
    if libfaketime() is None:
        return "libfaketime is not installed (Debian package libfaketime)"
    if shutil.which("cc") is None:
        return "no C compiler (cc) to build the chronyd timestamp shim"
    if not shutil.which("chronyd") and not Path("/usr/sbin/chronyd").exists():
        return "chronyd is not installed"
    return None


def _compile(source: Path, out: Path) -> Path:
    cmd = ["cc", "-shared", "-fPIC", "-O2", "-o", str(out), str(source), "-ldl"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BenchError(f"building {source.name} failed: {proc.stderr.strip()}")
    return out


def sleep_shim(work: Path) -> Path:
    """The monotonic-sleep shim in ``work`` (built on first use); its path."""
    out = work / "monotonic_sleep.so"
    return out if out.is_file() else _compile(SLEEP_SOURCE, out)


def build_shim(work: Path) -> Path:
    """Compile the chronyd shim (and the sleep shim) into ``work``; the chronyd shim's path."""
    sleep_shim(work)
    return _compile(SHIM_SOURCE, work / "no_kernel_timestamps.so")


def faketime_spec(shift_ns: int) -> str:
    """libfaketime's relative offset in seconds with a fraction: '+0.020000', '-0.004500'."""
    sign = "+" if shift_ns >= 0 else "-"
    return f"{sign}{abs(shift_ns) / 1e9:.9f}"


def shifted_env(shift_ns: int, work: Path, extra_preload: Path | None = None) -> dict[str, str]:
    """Environment variables that shift the wall clock by ``shift_ns`` (the shims are
    built in ``work``)."""
    lib = libfaketime()
    if lib is None:
        raise BenchError("libfaketime is not installed")
    # The sleep shim comes first, so its clock_nanosleep is the one found.
    libs = [sleep_shim(work), lib, *([extra_preload] if extra_preload else [])]
    return {
        "LD_PRELOAD": ":".join(str(p) for p in libs),
        "FAKETIME": faketime_spec(shift_ns),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "LC_ALL": "C",  # the fraction's delimiter follows the locale
    }


def env_argv(env: dict[str, str], argv: list[str]) -> list[str]:
    """``argv`` run by env(1) with ``env`` added (so ``ip netns exec`` itself is not shifted)."""
    return ["env", *(f"{k}={v}" for k, v in env.items()), *argv]


def verify_python(prefix: list[str], shift_ns: int, work: Path, tolerance_ns: int = 200_000) -> int:
    """Run the probe under ``prefix`` (e.g. ``ip netns exec NS``) with the shifted clock;
    the shift it saw. Raises when it is not ``shift_ns`` within ``tolerance_ns``."""
    argv = [*prefix, *env_argv(shifted_env(shift_ns, work), [sys.executable, "-c", _PROBE])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    try:
        seen = int(json.loads(proc.stdout.strip().splitlines()[-1])["shift_ns"])
    except (ValueError, KeyError, IndexError) as err:
        raise BenchError(f"the clock probe failed: {proc.stderr.strip() or err}") from err
    if abs(seen - shift_ns) > tolerance_ns:
        raise BenchError(
            f"libfaketime did not shift Python's clock as asked: wanted {shift_ns / 1e6:+.3f} "
            f"ms, saw {seen / 1e6:+.3f} ms (FAKETIME={faketime_spec(shift_ns)})"
        )
    return seen
