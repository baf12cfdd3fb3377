"""The updater's pure parts and its refusals: the feed parser, the signature check, safe
extraction, ``camfleet release sign``, and refused releases changing nothing on disk."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.cli import main as camfleet
from node_agent.commands import CommandRunner
from node_agent.errors import NotFound, RecordingConflict
from node_agent.schemas import RecorderState
from node_agent.updater.feed import MAX_FEED_BYTES, FeedError, parse_feed, pick
from node_agent.updater.install import (
    COMPLETE,
    InstallError,
    Layout,
    install,
    prune,
    switch,
    venv_options,
)
from node_agent.updater.service import FeedUnreachable, UpdateConflict, Updater
from node_agent.updater.settings import UpdaterSettings
from node_agent.updater.verify import VerifyError, sign_archive, verify_archive
from tests.updater_helpers import (
    NEW,
    OLD,
    Releases,
    ReleaseServer,
    copy_install,
    release_server,
    tar_with,
    tree,
)
from tests.updater_node import releases, template

__all__ = ["releases", "template"]  # the session fixtures


def release(tag: str, names: list[str], **extra: object) -> dict[str, object]:
    return {
        "tag_name": tag,
        "name": tag,
        "body": "fixes",
        "published_at": "2026-12-01T00:00:00Z",
        "draft": False,
        "prerelease": False,
        "assets": [
            {"name": n, "browser_download_url": f"http://127.0.0.1:9/{n}", "size": 10}
            for n in names
        ],
        **extra,
    }


def full(v: str) -> list[str]:
    a = f"camfleet-{v}.tar.gz"
    return [a, a + ".sha256", a + ".sig"]


# --- the feed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"tag_name": "v1"}', "not a list"),
        (b"[" + b" " * MAX_FEED_BYTES + b"]", "more than"),
    ],
)
def test_a_bad_feed_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_feed(data)


def test_releases_without_their_files_are_skipped_with_a_reason() -> None:
    doc = [
        release("v2.0.0", ["camfleet-2.0.0.tar.gz"]),  # no .sha256 / .sig
        release("v1.9.0", ["notes.txt"]),  # no archive
        release("../../etc", full("1.8.0")),  # not a version
        release("v1.7.0", full("1.7.0"), draft=True),
        {"assets": "nope"},
        "a string",
        release("v1.6.0", [*full("1.6.0")], assets="not a list"),
        release("v1.5.0", full("1.5.0")),
    ]
    releases, skipped = parse_feed(json.dumps(doc).encode())
    assert [r.version for r in releases] == ["1.5.0"]
    text = "\n".join(skipped)
    assert "2.0.0: camfleet-2.0.0.tar.gz has no .sha256 and .sig" in text
    assert "1.9.0: no camfleet-1.9.0.tar.gz" in text
    assert "not a version" in text
    assert "1.7.0: a draft" in text


def test_the_newest_by_version_is_picked_and_prereleases_only_when_allowed() -> None:
    doc = [
        release("v1.10.0", full("1.10.0")),
        release("v1.9.0", full("1.9.0")),
        release("v1.11.0rc1", full("1.11.0rc1")),
        release("v1.12.0", full("1.12.0"), prerelease=True),
    ]
    releases, _ = parse_feed(json.dumps(doc).encode())
    assert [r.version for r in releases] == ["1.12.0", "1.11.0rc1", "1.10.0", "1.9.0"]
    assert pick(releases, None, allow_prerelease=False).version == "1.10.0"  # type: ignore[union-attr]
    assert pick(releases, None, allow_prerelease=True).version == "1.12.0"  # type: ignore[union-attr]
    assert pick(releases, "1.9.0", allow_prerelease=False).version == "1.9.0"  # type: ignore[union-attr]
    assert pick(releases, "3.0", allow_prerelease=True) is None
    wheel = [
        "camfleet-2.0-py3-none-any.whl",
        "camfleet-2.0-py3-none-any.whl.sha256",
        "camfleet-2.0-py3-none-any.whl.sig",
    ]
    releases, _ = parse_feed(json.dumps([release("2.0", wheel)]).encode())
    assert releases[0].archive.name == "camfleet-2.0-py3-none-any.whl"


# --- the signature -----------------------------------------------------------------------


def signed(tmp_path: Path, key: Ed25519PrivateKey, data: bytes, name: str) -> tuple[Path, str, str]:
    path = tmp_path / name
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    return path, f"{digest}  {name}\n", sign_archive(key, name, digest)


def test_only_the_pinned_key_over_this_archive_and_name_verifies(tmp_path: Path) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    from common.identity import public_key_text

    pub = public_key_text(key)
    path, sha, sig = signed(tmp_path, key, b"release bytes", "camfleet-1.0.tar.gz")
    assert (
        verify_archive(path, path.name, sha, sig, pub)
        == hashlib.sha256(b"release bytes").hexdigest()
    )
    path.write_bytes(b"release bytez")  # tampered after signing
    with pytest.raises(VerifyError, match="SHA-256"):
        verify_archive(path, path.name, sha, sig, pub)
    path, sha, _ = signed(tmp_path, key, b"release bytes", "camfleet-1.0.tar.gz")
    _, _, wrong = signed(tmp_path, other, b"release bytes", "camfleet-1.0.tar.gz")
    with pytest.raises(VerifyError, match="signature"):
        verify_archive(path, path.name, sha, wrong, pub)
    # a validly signed 1.0 offered as 2.0 (same bytes, another name)
    renamed = tmp_path / "camfleet-2.0.tar.gz"
    renamed.write_bytes(b"release bytes")
    with pytest.raises(VerifyError, match="signature"):
        verify_archive(renamed, renamed.name, sha.replace("1.0", "2.0"), sig, pub)
    with pytest.raises(VerifyError, match="names"):
        verify_archive(path, path.name, sha.replace("1.0", "9.9"), sig, pub)
    with pytest.raises(VerifyError, match="no SHA-256"):
        verify_archive(path, path.name, "garbage", sig, pub)


def test_release_keygen_and_sign_make_files_the_node_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "release.pem"
    assert camfleet(["release", "keygen", str(key_file)]) == 0
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = capsys.readouterr().out.split("public_key: ")[1].split()[0]
    assert camfleet(["release", "keygen", str(key_file)]) == 1  # never overwrites a key
    archive = tmp_path / "camfleet-3.1.tar.gz"
    archive.write_bytes(b"x" * 5000)
    assert camfleet(["release", "sign", str(archive), "--key", str(key_file)]) == 0
    sha = (tmp_path / "camfleet-3.1.tar.gz.sha256").read_text()
    sig = (tmp_path / "camfleet-3.1.tar.gz.sig").read_text()
    assert verify_archive(archive, archive.name, sha, sig, public)
    assert camfleet(["release", "sign", str(archive), "--key", str(archive)]) == 2


# --- real releases, installed or refused -------------------------------------------------


@pytest.fixture
def server() -> Iterator[ReleaseServer]:
    with release_server() as s:
        yield s


def updater_for(
    root: Path,
    server: ReleaseServer,
    releases: Releases,
    template: Path,
    state: RecorderState = RecorderState.idle,
    **settings: object,
) -> Updater:
    opt = copy_install(template, root / "opt")
    conf = UpdaterSettings(
        feed_url=f"{server.url}/releases",
        public_key=releases.public_key,
        install_root=opt,
        base_venv=releases.root / "base",
        **settings,
    )
    return Updater(
        conf,
        root / "data",
        "http://127.0.0.1:9",
        lambda: "t" * 32,
        lambda: state,
        CommandRunner(),
        version=OLD,
    )


def wait_end(updater: Updater, timeout_s: float = 60) -> str:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        state = updater.status().state
        if state in ("failed", "switching", "done", "rolled_back"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"still {updater.status()}")


@pytest.mark.parametrize("damage", ["tampered archive", "wrong signature", "wrong checksum"])
def test_a_release_that_does_not_verify_changes_no_file(
    tmp_path: Path, server: ReleaseServer, releases: Releases, template: Path, damage: str
) -> None:
    updater = updater_for(tmp_path, server, releases, template)
    assets = releases.assets(NEW)
    name = releases.archives[NEW].name
    if damage == "tampered archive":
        data = bytearray(assets[name])
        data[len(data) // 2] ^= 0xFF
        assets[name] = bytes(data)
    elif damage == "wrong signature":
        assets = releases.assets(NEW, key=Ed25519PrivateKey.generate())
    else:
        assets[name + ".sha256"] = (hashlib.sha256(b"other").hexdigest() + f"  {name}\n").encode()
    server.publish(NEW, assets)
    before = tree(tmp_path / "opt")
    updater.apply(None)
    assert wait_end(updater) == "failed"
    assert tree(tmp_path / "opt") == before
    status = updater.status()
    assert status.history[-1].result == "refused"
    assert status.history[-1].version == NEW
    assert ("SHA-256" if damage != "wrong signature" else "signature") in (status.detail or "")
    assert not (tmp_path / "data" / "updates" / "pending.json").exists()


def test_apply_answers_404_502_409_with_reasons_and_check_reports_feed_errors(
    tmp_path: Path, server: ReleaseServer, releases: Releases, template: Path
) -> None:
    updater = updater_for(tmp_path, server, releases, template)
    server.publish(NEW, releases.assets(NEW))
    with pytest.raises(NotFound, match=r"offers 1\.0\.1"):
        updater.apply("9.9.9")
    with pytest.raises(UpdateConflict, match="the version this node runs"):
        server.publish(OLD, releases.assets(OLD))
        updater.apply(OLD)
    check = updater.check()
    assert (check.current, check.available, check.update_available) == (OLD, NEW, True)
    server.feed = b"{broken"
    assert "not JSON" in (updater.check().error or "")
    with pytest.raises(FeedUnreachable, match="not JSON"):
        updater.apply(None)
    dead = UpdaterSettings(feed_url="http://127.0.0.1:9/releases", public_key=releases.public_key)
    gone = Updater(
        dead,
        tmp_path / "d2",
        "",
        lambda: "",
        lambda: RecorderState.idle,
        CommandRunner(),
        version=OLD,
    )
    assert "cannot read the feed" in (gone.check().error or "")
    with pytest.raises(FeedUnreachable):
        gone.apply(None)


def test_apply_during_a_recording_is_409_every_time_and_not_queued(
    tmp_path: Path, server: ReleaseServer, releases: Releases, template: Path
) -> None:
    updater = updater_for(tmp_path, server, releases, template, RecorderState.recording)
    server.publish(NEW, releases.assets(NEW))
    before = tree(tmp_path / "opt")
    for _ in range(3):
        with pytest.raises(RecordingConflict, match="recording is in progress"):
            updater.apply(None)
    assert updater.status().state == "idle" and not updater.status().queued
    assert tree(tmp_path / "opt") == before
    assert not [r for r in server.requests if "download" in r[0]]


@pytest.mark.parametrize(
    ("members", "links", "why"),
    [
        ({"../escape.whl": b"x"}, None, "points outside"),
        ({"/abs/camfleet-1.0.1-py3-none-any.whl": b"x"}, None, "points outside"),
        ({"ok/../../x": b"x"}, None, "points outside"),
        ({}, {"camfleet-1.0.1-py3-none-any.whl": "/etc/passwd"}, "not a regular file"),
        ({"readme.txt": b"no wheel"}, None, "one camfleet wheel"),
        ({"camfleet-9.9-py3-none-any.whl": b"x"}, None, "is not version 1.0.1"),
    ],
)
def test_an_unsafe_or_wrong_archive_is_not_installed(
    tmp_path: Path,
    releases: Releases,
    template: Path,
    members: dict[str, bytes],
    links: dict[str, str] | None,
    why: str,
) -> None:
    opt = copy_install(template, tmp_path / "opt")
    archive = tmp_path / f"camfleet-{NEW}.tar.gz"
    archive.write_bytes(tar_with(members, links))
    before = tree(tmp_path)
    with pytest.raises(InstallError, match=why):
        install(Layout(opt, releases.root / "base"), archive, NEW, "0" * 64, CommandRunner())
    assert tree(tmp_path) == before


def test_pruning_keeps_the_newest_installs_and_never_current_or_the_previous_one(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path / "opt", tmp_path / "base")
    for i, version in enumerate(["1.0", "1.1", "1.2", "1.3", "1.4"]):
        folder = layout.folder(version)
        folder.mkdir(parents=True)
        (folder / COMPLETE).write_text("{}")
        stamp = 1_000_000 + i
        import os

        os.utime(folder / COMPLETE, (stamp, stamp))
    (layout.versions / ".staging-1.5").mkdir()  # a crash's leftover
    (layout.versions / "1.6").mkdir()  # half built (no .complete): not a version
    switch(layout, "1.0")  # an old one is current (a rollback)
    gone = prune(layout, keep=3, protect={"1.1"})
    assert gone == ["1.2", "1.3"]
    assert layout.installed() == ["1.0", "1.1", "1.4"]
    assert not (layout.versions / ".staging-1.5").exists()
    assert layout.current_version() == "1.0"
    with pytest.raises(InstallError, match="not a whole install"):
        switch(layout, "1.6")
    assert layout.current_version() == "1.0"


def test_a_release_whose_dependencies_the_base_lacks_is_refused_by_pip_check(
    tmp_path: Path, releases: Releases, template: Path
) -> None:
    import zipfile

    opt = copy_install(template, tmp_path / "opt")
    source = releases.wheels[NEW]
    wheel = tmp_path / source.name
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(wheel, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.endswith(".dist-info/METADATA"):
                data = data.replace(
                    b"Requires-Dist:",
                    b"Requires-Dist: camfleet-no-such-dependency>=1\nRequires-Dist:",
                    1,
                )
            new.writestr(item, data)
    before = tree(opt)
    with pytest.raises(InstallError, match="camfleet-no-such-dependency"):
        install(Layout(opt, releases.root / "base"), wheel, NEW, "0" * 64, CommandRunner())
    assert tree(opt) == before


def test_a_version_sees_the_system_packages_when_the_base_does(tmp_path: Path) -> None:
    assert venv_options(tmp_path) == []  # no base yet
    cfg = tmp_path / "pyvenv.cfg"
    cfg.write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    assert venv_options(tmp_path) == []
    cfg.write_text("home = /usr/bin\ninclude-system-site-packages = true\nversion = 3.11.2\n")
    assert venv_options(tmp_path) == ["--system-site-packages"]
