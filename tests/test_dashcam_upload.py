"""The dashcam's upload against a real sshd and real rsync on loopback: sent, confirmed by the
NAS's own sha256sum, then cleaned; retried with backoff; a corrupted copy refused and repaired;
a loose key, an unreachable NAS, a changed host key refused; a dry run that changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import free_port
from bench.dashcam import stage_file
from node_agent.commands import CommandRunner
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.schemas import IngestManifest
from node_agent.dashcam.settings import PollSettings, UploadSettings
from node_agent.dashcam.upload import Uploader, UploadOutcome
from tests.fakebin import FakeBin
from tests.sshd import Sshd, running_sshd, upload_settings

CAM_ID = "CAM_D"
REAL_RSYNC = "/usr/bin/rsync"
FILES = {
    "DCIM/100MEDIA/FILE0001.MP4": 300_000,
    "DCIM/100MEDIA/FILE0002.MP4": 1,
    "DCIM/101MEDIA/FILE0003.MP4": 70_000,
}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


class Rig:
    """A staging folder with files ingested from a stand-in camera, and a NAS folder."""

    def __init__(self, root: Path, sshd: Sshd) -> None:
        self.root = root
        self.sshd = sshd
        self.ledger = Ledger(root / "staging")
        self.nas = root / "nas"
        self.nas.mkdir()
        self.data_dir = root / "agent"
        self.sleeps: list[float] = []
        self.camera = root / "camera"
        self.manifests: list[IngestManifest] = []

    def ingest(self, files: dict[str, int] = FILES) -> list[IngestManifest]:
        for i, (rel, size) in enumerate(files.items()):
            src = self.camera / rel
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(os.urandom(size))
            os.utime(src, ns=(1_700_000_000_000_000_000 + i, 1_700_000_000_000_000_000 + i))
            self.manifests.append(
                stage_file(self.ledger, src, rel, f"DEV1/{rel}", node_id="n1", cam_id=CAM_ID)
            )
        return self.manifests

    async def _sleep(self, s: float) -> None:
        self.sleeps.append(s)

    def uploader(
        self,
        runner: CommandRunner | None = None,
        settings: UploadSettings | None = None,
        **kw: object,
    ) -> Uploader:
        return Uploader(
            settings or upload_settings(self.sshd, self.nas),
            PollSettings(upload_retries=3),
            self.ledger,
            runner or CommandRunner(),
            self.data_dir,
            "n1",
            CAM_ID,
            sleep=self._sleep,
            **kw,  # type: ignore[arg-type]
        )

    def upload(self, uploader: Uploader) -> list[UploadOutcome]:
        with self.ledger.locked():
            return asyncio.run(uploader.upload_pending())

    def on_nas(self, m: IngestManifest) -> Path:
        return self.nas / CAM_ID / m.staged_path

    def manifest_bytes(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.ledger.manifest_dir)): p.read_bytes()
            for p in sorted(self.ledger.manifest_dir.rglob("*.json"))
        }


@pytest.fixture
def rig(tmp_path: Path, sshd: Sshd) -> Rig:
    return Rig(tmp_path, sshd)


def _fake_rsync(tmp_path: Path, body: str) -> tuple[FakeBin, CommandRunner]:
    fake = FakeBin(tmp_path)
    fake.add("rsync", script=body)
    return fake, CommandRunner(env={"PATH": f"{fake.dir}{os.pathsep}{os.environ['PATH']}"})


def test_staged_files_are_sent_confirmed_by_the_nas_and_cleaned(rig: Rig) -> None:
    staged = rig.ingest()
    runner = CommandRunner()
    outcomes = rig.upload(rig.uploader(runner))
    assert [o.staged_path for o in outcomes] == [m.staged_path for m in staged]  # oldest first
    assert all(o.ok and o.attempts == 1 and o.delays_s == () for o in outcomes), outcomes
    for m, o in zip(staged, outcomes, strict=True):
        original = (rig.camera / m.source_path).read_bytes()
        assert rig.on_nas(m).read_bytes() == original
        assert o.bytes == len(original)
        after = rig.ledger.read(m.staged_path)
        assert after is not None and after.offloaded and after.last_error is None
        assert after.upload_attempts == 1
        assert after.offloaded_to == (
            f"rsync:{rig.sshd.user}@127.0.0.1:{rig.sshd.port}{rig.nas}/{CAM_ID}/{m.staged_path}"
        )
        assert after.offloaded_at_ns is not None and after.staging_deleted_at_ns is not None
        assert after.offloaded_at_ns <= after.staging_deleted_at_ns
        assert not rig.ledger.staged_file(m).exists()
    assert not (rig.ledger.staging / "DEV1").exists()  # emptied folders go too
    assert rig.ledger.pending_upload() == []
    checks = [c.argv for c in runner.recent() if "sha256sum" in c.argv[-1]]
    assert len(checks) == len(staged)
    assert all(
        c[-1] == f"sha256sum -- {rig.nas}/{CAM_ID}/{m.staged_path}"
        for c, m in zip(checks, staged, strict=True)
    )
    sent = [c.argv for c in runner.recent() if c.argv[0] == "rsync"]
    assert all("--remove-source-files" not in a and "--inplace" in a for a in sent)
    assert rig.upload(rig.uploader()) == []  # nothing left to do


def test_the_nas_may_hash_with_openssl_and_is_still_checked(rig: Rig) -> None:
    staged = rig.ingest()
    settings = upload_settings(rig.sshd, rig.nas).model_copy(update={"remote_hasher": "openssl"})
    runner = CommandRunner()
    outcomes = rig.upload(rig.uploader(runner, settings))
    assert all(o.ok for o in outcomes), outcomes
    checks = [c for c in runner.recent() if "openssl dgst" in c.argv[-1]]
    assert [c.argv[-1] for c in checks] == [
        f"openssl dgst -sha256 -r {rig.nas}/{CAM_ID}/{m.staged_path}" for m in staged
    ]
    assert all(c.stdout.startswith(m.sha256) for c, m in zip(checks, staged, strict=True))
    assert not any("sha256sum" in c.argv[-1] for c in runner.recent())


def test_ssh_options_are_strict_and_the_key_is_never_printed(rig: Rig) -> None:
    rig.ingest({"A/B.MP4": 10})
    runner = CommandRunner()
    [outcome] = rig.upload(rig.uploader(runner))
    assert outcome.ok
    rsync = next(c.argv for c in runner.recent() if c.argv[0] == "rsync")
    shell = rsync[rsync.index("-e") + 1]
    for option in (
        f"-i {rig.sshd.client_key}",
        f"-p {rig.sshd.port}",
        "-o BatchMode=yes",
        "-o IdentitiesOnly=yes",
        "-o ConnectTimeout=5",
        "-o StrictHostKeyChecking=yes",
        f"-o UserKnownHostsFile={rig.sshd.known_hosts}",
    ):
        assert option in shell, shell
    key_text = rig.sshd.client_key.read_text()
    secret = key_text.splitlines()[1]
    assert all(secret not in " ".join(c.argv) + c.stdout + c.stderr for c in runner.recent())


def test_rsync_failing_twice_is_retried_with_backoff(rig: Rig, tmp_path: Path) -> None:
    [m] = rig.ingest({"DCIM/100MEDIA/FILE0009.MP4": 50_000})
    count = tmp_path / "rsync-calls"
    fake, runner = _fake_rsync(
        tmp_path,
        f'n=$(cat {count} 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > {count}\n'
        'if [ "$n" -le 2 ]; then\n'
        '  echo "rsync: connection unexpectedly closed (0 bytes received so far) [sender]" >&2\n'
        '  echo "rsync error: error in rsync protocol data stream (code 12)" >&2\n'
        "  exit 12\n"
        "fi\n"
        f'exec {REAL_RSYNC} "$@"\n',
    )
    [outcome] = rig.upload(rig.uploader(runner))
    assert outcome.ok, outcome
    assert outcome.attempts == 3
    assert len(fake.argvs("rsync")) == 3
    # backoff_s(n, base 2 s, max 60 s, jitter "add"): base x 2**(n-1) plus up to 1 s
    assert rig.sleeps == list(outcome.delays_s)
    first, second = rig.sleeps
    assert 2.0 <= first <= 3.0 and 4.0 <= second <= 5.0, rig.sleeps
    after = rig.ledger.read(m.staged_path)
    assert after is not None and after.offloaded and after.upload_attempts == 3
    assert after.last_error is None
    assert rig.on_nas(m).read_bytes() == (rig.camera / m.source_path).read_bytes()


def test_rsync_failing_every_time_gives_up_after_the_retries(rig: Rig, tmp_path: Path) -> None:
    [m] = rig.ingest({"X/Y.MP4": 10})
    fake, runner = _fake_rsync(
        tmp_path, 'echo "rsync error: some files vanished (code 24)" >&2\nexit 24\n'
    )
    settings = upload_settings(rig.sshd, rig.nas, backoff_base_s=1.0, backoff_max_s=3.0)
    [outcome] = rig.upload(rig.uploader(runner, settings))
    assert not outcome.ok and outcome.attempts == 4  # the first try and poll.upload_retries 3
    assert "rsync exit 24" in (outcome.error or "")
    assert len(rig.sleeps) == 3 and all(s <= 3.0 for s in rig.sleeps)  # capped at max
    assert 1.0 <= rig.sleeps[0] <= 2.0 and 2.0 <= rig.sleeps[1] <= 3.0 and rig.sleeps[2] == 3.0
    after = rig.ledger.read(m.staged_path)
    assert after is not None and not after.offloaded and after.upload_attempts == 4
    assert after.last_error is not None and "rsync exit 24" in after.last_error
    assert rig.ledger.staged_file(m).exists()
    assert len(fake.argvs("rsync")) == 4


FLIP_REMOTE_BYTE = (
    f'{REAL_RSYNC} "$@" || exit $?\n'
    "for last; do :; done\n"  # the destination user@host:/path, a folder on this machine
    '"$FAKE_PYTHON" - "${last#*:}" <<\'EOF\'\n'
    "import os, sys\n"
    "path = sys.argv[1]\n"
    "st = os.stat(path)\n"
    "with open(path, 'r+b') as f:\n"
    "    f.seek(st.st_size // 2)\n"
    "    b = f.read(1)\n"
    "    f.seek(st.st_size // 2)\n"
    "    f.write(bytes([b[0] ^ 0xFF]))\n"
    "os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same time\n"
    "EOF\n"
)


def test_a_corrupted_copy_on_the_nas_is_not_confirmed_and_repaired_next_run(
    rig: Rig, tmp_path: Path
) -> None:
    [m] = rig.ingest({"DCIM/100MEDIA/FILE0100.MP4": 200_000})
    original = rig.ledger.staged_file(m).read_bytes()
    _, corrupting = _fake_rsync(tmp_path, FLIP_REMOTE_BYTE)
    [bad] = rig.upload(rig.uploader(corrupting))
    assert not bad.ok and "checksum mismatch" in (bad.error or ""), bad
    assert rig.ledger.staged_file(m).read_bytes() == original  # not deleted
    remote = rig.on_nas(m)
    assert remote.read_bytes() != original
    staged_st, remote_st = rig.ledger.staged_file(m).stat(), remote.stat()
    # rsync's quick check (size and time) alone would call this copy up to date
    assert (remote_st.st_size, remote_st.st_mtime_ns) == (staged_st.st_size, staged_st.st_mtime_ns)
    after = rig.ledger.read(m.staged_path)
    assert after is not None and not after.offloaded and after.staging_deleted_at_ns is None
    assert after.upload_attempts == 1 and "checksum mismatch" in (after.last_error or "")
    assert [x.staged_path for x in rig.ledger.pending_upload()] == [m.staged_path]

    runner = CommandRunner()
    [good] = rig.upload(rig.uploader(runner))
    assert good.ok, good
    assert remote.read_bytes() == original
    rsync = next(c.argv for c in runner.recent() if c.argv[0] == "rsync")
    assert "--checksum" in rsync
    final = rig.ledger.read(m.staged_path)
    assert final is not None and final.offloaded and final.upload_attempts == 2
    assert final.last_error is None and not rig.ledger.staged_file(m).exists()


def test_a_key_others_can_read_is_refused_and_nothing_is_sent(rig: Rig, tmp_path: Path) -> None:
    staged = rig.ingest()
    key = tmp_path / "loose_key"
    key.write_bytes(rig.sshd.client_key.read_bytes())
    key.chmod(0o644)
    before = rig.manifest_bytes()
    runner = CommandRunner()
    settings = upload_settings(rig.sshd, rig.nas, ssh_key=key)
    outcomes = rig.upload(rig.uploader(runner, settings))
    assert len(outcomes) == len(staged) and not any(o.ok for o in outcomes)
    assert all(f"chmod 600 {key}" in (o.error or "") and o.attempts == 0 for o in outcomes)
    assert runner.recent() == []
    assert list(rig.nas.iterdir()) == []
    assert rig.manifest_bytes() == before
    key.chmod(0o400)  # read-only for the owner is private enough
    assert all(o.ok for o in rig.upload(rig.uploader(CommandRunner(), settings)))


def test_an_unreachable_nas_fails_fast_with_a_clear_error(rig: Rig) -> None:
    staged = rig.ingest()
    port = free_port()  # nobody listens there
    settings = upload_settings(rig.sshd, rig.nas, port=port)
    runner = CommandRunner()
    uploader = rig.uploader(runner, settings)
    assert uploader.reachable() is False
    before = rig.manifest_bytes()
    outcomes = rig.upload(uploader)
    assert len(outcomes) == len(staged)
    assert all(
        not o.ok and o.attempts == 0 and f"127.0.0.1:{port} is not reachable" in (o.error or "")
        for o in outcomes
    ), outcomes
    assert runner.recent() == [] and rig.sleeps == []
    assert rig.manifest_bytes() == before
    assert rig.uploader().reachable() is True


def test_dry_run_logs_the_commands_and_changes_nothing(rig: Rig) -> None:
    staged = rig.ingest()
    before = rig.manifest_bytes()
    runner = CommandRunner(dry_run=True)
    outcomes = rig.upload(rig.uploader(runner))
    assert all(o.dry_run and not o.ok for o in outcomes)
    assert list(rig.nas.iterdir()) == []
    assert rig.manifest_bytes() == before
    assert all(rig.ledger.staged_file(m).exists() for m in staged)
    calls = runner.recent()
    assert calls and all(c.dry_run for c in calls)
    assert [c.argv[0] for c in calls].count("rsync") == len(staged)
    assert sum("sha256sum --" in c.argv[-1] for c in calls) == len(staged)


def test_the_host_key_is_trusted_on_first_use_and_refused_when_it_changes(
    rig: Rig, tmp_path: Path
) -> None:
    [first] = rig.ingest({"A/1.MP4": 1000})
    settings = upload_settings(rig.sshd, rig.nas, known_hosts=None)
    assert rig.upload(rig.uploader(CommandRunner(), settings))[0].ok
    kept = rig.data_dir / "dashcam" / "known_hosts"
    host_key = rig.sshd.known_hosts.read_text().split()[2]
    assert host_key in kept.read_text()
    # another key for the same host and port: ssh must refuse, and no retry can help
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = other.with_suffix(".pub").read_text().split()[:2]
    kept.write_text(f"[127.0.0.1]:{rig.sshd.port} {kind} {key}\n")
    [second] = rig.ingest({"A/2.MP4": 1000})[1:]
    [outcome] = rig.upload(rig.uploader(CommandRunner(), settings))
    assert not outcome.ok and outcome.attempts == 1 and rig.sleeps == []
    assert "host key is not the one in" in (outcome.error or "")
    assert f"ssh-keygen -R '[127.0.0.1]:{rig.sshd.port}' -f {kept}" in (outcome.error or "")
    assert not rig.on_nas(second).exists()
    assert rig.ledger.staged_file(second).exists()
    assert rig.on_nas(first).exists()


def test_a_confirmed_file_left_in_staging_is_deleted_on_the_next_run(rig: Rig) -> None:
    [m] = rig.ingest({"A/1.MP4": 10})
    confirmed = m.model_copy(update={"offloaded": True, "offloaded_at_ns": 1, "offloaded_to": "x"})
    rig.ledger.write(confirmed)  # as if the run stopped between the confirm and the delete
    runner = CommandRunner()
    assert rig.upload(rig.uploader(runner)) == []
    assert not rig.ledger.staged_file(m).exists()
    after = rig.ledger.read(m.staged_path)
    assert after is not None and after.staging_deleted_at_ns is not None
    assert runner.recent() == []


def test_a_missing_staged_copy_is_an_error_not_a_confirmation(rig: Rig) -> None:
    [m] = rig.ingest({"A/1.MP4": 10})
    rig.ledger.staged_file(m).unlink()
    [outcome] = rig.upload(rig.uploader())
    assert not outcome.ok and "missing" in (outcome.error or "")
    after = rig.ledger.read(m.staged_path)
    assert after is not None and not after.offloaded and "missing" in (after.last_error or "")


def test_a_nas_that_stops_answering_ends_the_run(tmp_path: Path) -> None:
    with running_sshd(tmp_path / "own-sshd") as own:
        rig = Rig(tmp_path, own)
        staged = rig.ingest()
        # the first transfer kills the NAS (its sshd, which this test started) and fails
        fake, runner = _fake_rsync(
            tmp_path,
            f'kill {own.pid} 2>/dev/null; sleep 0.2\necho "rsync: connection reset" >&2\nexit 12\n',
        )
        outcomes = rig.upload(rig.uploader(runner))
    assert len(outcomes) == len(staged) and not any(o.ok for o in outcomes)
    assert outcomes[0].attempts == 4  # the first file used its retries
    assert all(o.attempts == 0 and "not tried" in (o.error or "") for o in outcomes[1:])
    assert len(rig.sleeps) == 3 and len(fake.argvs("rsync")) == 4  # only the first file's
    assert all(rig.ledger.staged_file(m).exists() for m in staged)
