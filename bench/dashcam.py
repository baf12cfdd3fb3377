"""Benchmark 10, the dashcam's ingest plus rsync upload over loopback ssh, beside a plain
``rsync -a`` of the same files over the same ssh, in the same run.

A folder stands in for the camera's storage (``files`` files of random bytes). One real
sshd on 127.0.0.1 (``bench/sshd.py``) is the NAS; its folders are on this machine's disk.
Each round, in alternating order, each after an ``os.sync()``:

- *measured*: ingest every file into a fresh staging folder the way the ingest does per file
  (``copy_hashed``: copy while hashing, fsync, rename; a manifest written with
  ``Ledger.write``), then ``Uploader.upload_pending`` (rsync per file, the NAS's
  ``sha256sum`` compared with the manifest, manifest confirmed, staged copy deleted);
- *plain*: one ``rsync -a`` of the camera folder to another folder on the NAS, with the
  same ssh options: no hashing on either side, no manifests, no fsync.

Each side runs in its own worker process (``python -m bench.dashcam --worker``) that is a
child subreaper, so the CPU of every program it started, including the shared ssh
connection's master that outlives the ssh call that forked it, is counted in its rusage.
The NAS's CPU is that of the sshd and every session it reaped (``/proc``). The NAS's
``sha256sum`` over the same files alone is timed once per round, to show what it costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO_ROOT, BenchError
from bench.offload import Side
from bench.sshd import Sshd, proc_cpu_s, running_sshd
from node_agent.commands import CommandRunner
from node_agent.dashcam.detect import FoundCamera, UsbDevice
from node_agent.dashcam.ingest import CameraFile, Ingestor
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.remote import Remote
from node_agent.dashcam.schemas import IngestManifest
from node_agent.dashcam.settings import PollSettings, UploadSettings
from node_agent.dashcam.upload import Uploader

NODE_ID = "dashcam-1"
CAM_ID = "CAM_DASH"
DEVICE_ID = "BENCHCAM"
BLOCK = 8 << 20
_PR_SET_CHILD_SUBREAPER = 36


def stage_file(
    ledger: Ledger,
    src: Path,
    source_path: str,
    staged_path: str,
    *,
    node_id: str = NODE_ID,
    cam_id: str = CAM_ID,
    device_id: str = DEVICE_ID,
) -> IngestManifest:
    """Ingest one camera file into staging with the ingest's own step (copy while hashing,
    then the manifest). ``source_path`` is ``src``'s path under the card's root."""
    st = src.stat()
    root = src.parents[len(Path(source_path).parts) - 1]  # the card's root
    if src != root / source_path:
        raise ValueError(f"{src} is not at {source_path} under a card's root")
    ingestor = Ingestor(ledger, node_id, cam_id, "bench", [src.suffix])
    usb = UsbDevice("bench", root, None, None, device_id)
    camera = FoundCamera(root, "bench", device_id, usb)
    f = CameraFile(source_path, st.st_size, st.st_mtime_ns)
    return ingestor.copy_one(root, f, camera, staged_path)


def write_camera(folder: Path, files: int, file_bytes: int) -> list[Path]:
    """``files`` files of random bytes, as a dashcam names them."""
    target = folder / "DCIM" / "100MEDIA"
    target.mkdir(parents=True, exist_ok=True)
    block = os.urandom(BLOCK)
    out = []
    for i in range(files):
        path = target / f"FILE{i:04d}.MP4"
        with open(path, "wb") as fh:
            fh.write(f"{i}".encode().ljust(64, b"\0"))  # every file differs
            left = file_bytes - 64
            while left > 0:
                left -= fh.write(block[: min(left, BLOCK)])
        out.append(path)
    return out


@dataclass
class DashcamResult:
    """Both sides of benchmark 10."""

    files: int
    file_bytes: int
    rounds: int
    measured: Side
    plain: Side
    openssl: Side  # the measured path with dashcam.upload.remote_hasher: openssl
    ingest_s: list[float] = field(default_factory=list)
    upload_s: list[float] = field(default_factory=list)
    rsync_s: list[float] = field(default_factory=list)  # the rsync calls, summed
    check_s: list[float] = field(default_factory=list)  # the NAS's sha256sum calls, summed
    nas_sha256sum_s: list[float] = field(default_factory=list)
    verified: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.measured.mb_s() / self.plain.mb_s()

    @property
    def openssl_ratio(self) -> float:
        return self.openssl.mb_s() / self.plain.mb_s()


def upload_settings(sshd: Sshd, dest: Path, hasher: str = "sha256sum") -> UploadSettings:
    """``dashcam.upload`` for the bench's sshd, ``dest`` as the NAS folder."""
    return UploadSettings(
        remote_hasher=hasher,
        host=sshd.host,
        user=sshd.user,
        port=sshd.port,
        dest_path=str(dest),
        ssh_key=sshd.client_key,
        known_hosts=sshd.known_hosts,
    )


# -- the worker: one side of one round, in its own process ---------------------------------


def _measured(job: dict[str, str]) -> dict[str, object]:
    settings = UploadSettings.model_validate_json(job["settings"])
    camera, staging = Path(job["camera"]), Path(job["staging"])
    ledger = Ledger(staging)
    t0 = time.perf_counter()
    with ledger.locked():
        # The agent's own ingest over the folder standing in for the mounted card: the walk,
        # the ledger check, the copy while hashing (fsync, rename) and one manifest each.
        ingestor = Ingestor(ledger, NODE_ID, CAM_ID, "bench", [".mp4"])
        usb = UsbDevice("bench", camera, None, None, DEVICE_ID)
        ingested = ingestor.ingest(camera, FoundCamera(camera, "bench", DEVICE_ID, usb))
        t1 = time.perf_counter()
        runner = CommandRunner(default_timeout_s=600, journal_size=10_000)
        uploader = Uploader(
            settings, PollSettings(), ledger, runner, Path(job["data_dir"]), NODE_ID, CAM_ID
        )
        outcomes = asyncio.run(uploader.upload_pending())
    t2 = time.perf_counter()
    errors = [f"{o.staged_path}: {o.error}" for o in outcomes if not o.ok]
    if len(ingested.copied) != len(outcomes):
        errors.append(f"ingest copied {len(ingested.copied)} files, {len(outcomes)} uploaded")
    calls = runner.recent()
    return {
        "ingest_s": t1 - t0,
        "upload_s": t2 - t1,
        "ok": len(outcomes) - len(errors),
        "errors": errors,
        "rsync_s": sum(c.duration_s for c in calls if Path(c.argv[0]).name == "rsync"),
        "check_s": sum(
            c.duration_s for c in calls if "sha256sum" in c.argv[-1] or "openssl dgst" in c.argv[-1]
        ),
    }


def _plain(job: dict[str, str]) -> dict[str, object]:
    settings = UploadSettings.model_validate_json(job["settings"])
    remote = Remote.from_settings(settings, Path(job["data_dir"]))
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            "rsync",
            "-a",
            "-e",
            remote.rsync_shell(),
            f"{job['camera']}/",
            remote.rsync_target(f"{settings.dest_path}/"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    t1 = time.perf_counter()
    errors = (
        [] if done.returncode == 0 else [f"rsync -a: exit {done.returncode}: {done.stderr[-300:]}"]
    )
    return {"ingest_s": 0.0, "upload_s": t1 - t0, "ok": 0, "errors": errors}


def _reap(timeout_s: float = 20.0) -> None:
    """Wait for every descendant this subreaper adopted, so their CPU is in our rusage."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.02)


def _worker(argv: list[str]) -> int:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    job = json.loads(argv[0])
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = _measured(job) if job["side"] == "measured" else _plain(job)
    _reap()
    mine = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = (
        mine.ru_utime
        - before.ru_utime
        + mine.ru_stime
        - before.ru_stime
        + kids.ru_utime
        + kids.ru_stime
    )
    print(json.dumps(result), flush=True)
    return 0


# -- the bench --------------------------------------------------------------------------------


def _run_side(job: dict[str, str], side: Side, sshd: Sshd) -> dict[str, object]:
    os.sync()  # neither side pays for the other's dirty pages
    nas0 = proc_cpu_s(sshd.pid)
    done = subprocess.run(
        [sys.executable, "-m", "bench.dashcam", "--worker", json.dumps(job)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"dashcam bench worker ({job['side']}) failed:\n{done.stderr[-2000:]}")
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    time.sleep(0.2)  # sshd reaps its finished sessions on SIGCHLD
    side.seconds.append(float(out["ingest_s"]) + float(out["upload_s"]))  # type: ignore[arg-type]
    side.cpu_s.append(float(out["cpu_s"]))  # type: ignore[arg-type]
    side.server_cpu_s.append(proc_cpu_s(sshd.pid) - nas0)
    return out


def run_dashcam(root: Path, files: int, file_mb: float, rounds: int) -> DashcamResult:
    """Start an sshd; ``rounds`` rounds of the measured path and the plain rsync."""
    base = root / "dashcam"
    file_bytes = int(file_mb * 1e6)
    result = DashcamResult(
        files=files,
        file_bytes=file_bytes,
        rounds=rounds,
        measured=Side("ingest (hash, fsync) + Uploader (rsync, NAS sha256sum, confirm)"),
        plain=Side("plain rsync -a over the same ssh (no hashing)"),
        openssl=Side("the same, the NAS hashing with `openssl dgst -sha256` (remote_hasher)"),
    )
    result.measured.round_bytes = result.plain.round_bytes = files * file_bytes
    result.openssl.round_bytes = files * file_bytes
    camera = base / "camera"
    write_camera(camera, files, file_bytes)
    with running_sshd(base / "sshd") as sshd:
        for r in range(rounds):
            nas_m, nas_p, staging = base / "nas-measured", base / "nas-plain", base / "staging"
            for folder in (nas_m, nas_p, staging):
                shutil.rmtree(folder, ignore_errors=True)
            nas_p.mkdir(parents=True)
            common = {"camera": str(camera), "data_dir": str(base / "agent")}
            measured = common | {
                "side": "measured",
                "staging": str(staging),
                "settings": upload_settings(sshd, nas_m).model_dump_json(),
            }
            plain = common | {
                "side": "plain",
                "settings": upload_settings(sshd, nas_p).model_dump_json(),
            }
            nas_o, staging_o = base / "nas-openssl", base / "staging-openssl"
            for folder in (nas_o, staging_o):
                shutil.rmtree(folder, ignore_errors=True)
            with_openssl = common | {
                "side": "measured",
                "staging": str(staging_o),
                "settings": upload_settings(sshd, nas_o, "openssl").model_dump_json(),
            }
            order = [
                (measured, result.measured),
                (plain, result.plain),
                (with_openssl, result.openssl),
            ]
            for job, side in order if r % 2 == 0 else order[::-1]:
                out = _run_side(job, side, sshd)
                if job is with_openssl and out["ok"] != files:
                    result.verified = False
                if out["errors"]:
                    result.verified = False
                    result.problems += [str(e) for e in out["errors"]][:3]  # type: ignore[attr-defined]
                if job is measured:
                    result.ingest_s.append(float(out["ingest_s"]))  # type: ignore[arg-type]
                    result.upload_s.append(float(out["upload_s"]))  # type: ignore[arg-type]
                    result.rsync_s.append(float(out["rsync_s"]))  # type: ignore[arg-type]
                    result.check_s.append(float(out["check_s"]))  # type: ignore[arg-type]
                    if out["ok"] != files:
                        result.verified = False
            result.nas_sha256sum_s.append(_nas_sha256sum(sshd, nas_m / CAM_ID))
            _check(result, camera, nas_m / CAM_ID / DEVICE_ID, nas_p, staging)
            _check(result, camera, nas_o / CAM_ID / DEVICE_ID, nas_p, staging_o)
            print(
                f"  dashcam round {r + 1}: ingest + upload {result.measured.seconds[-1]:.2f} s "
                f"(ingest {result.ingest_s[-1]:.2f} s), plain rsync {result.plain.seconds[-1]:.2f} s, "
                f"with openssl on the NAS {result.openssl.seconds[-1]:.2f} s",
                flush=True,
            )
    shutil.rmtree(base, ignore_errors=True)
    return result


def _nas_sha256sum(sshd: Sshd, folder: Path) -> float:
    """The NAS hashing the round's files alone, over one ssh call."""
    paths = sorted(str(p) for p in folder.rglob("*.MP4"))
    t0 = time.perf_counter()
    subprocess.run(
        [*sshd.ssh_argv(), f"{sshd.user}@{sshd.host}", "sha256sum -- " + " ".join(paths)],
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - t0


def _check(result: DashcamResult, camera: Path, nas_m: Path, nas_p: Path, staging: Path) -> None:
    """Both NAS copies equal the camera's files, and staging holds no footage any more."""
    for src in sorted(camera.rglob("*.MP4")):
        rel = src.relative_to(camera)
        for copy in (nas_m / rel, nas_p / rel):
            if not copy.is_file() or copy.stat().st_size != src.stat().st_size:
                result.verified = False
                result.problems.append(f"{copy} missing or short")
    left = [p for p in staging.rglob("*.MP4")] if staging.exists() else []
    if left:
        result.verified = False
        result.problems.append(f"{len(left)} staged copies left after their upload")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker(sys.argv[2:]))
    print("run via python -m bench.report_dashcam", file=sys.stderr)
    sys.exit(2)
