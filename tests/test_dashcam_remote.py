"""The pure parts of the dashcam upload: the key check, remote paths, the NAS's sha256sum
answer read strictly, and the ssh and rsync command lines."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from pydantic import ValidationError

from node_agent.commands import Completed
from node_agent.dashcam.remote import (
    Remote,
    key_problem,
    mkdir_command,
    parse_sha256sum,
    remote_path,
    rsync_argv,
    sha256sum_command,
    short_error,
)
from node_agent.dashcam.settings import UploadSettings

HEX = "ab" * 32
PATH = "/data/dashcam/CAM_C/DEV1/DCIM/FILE0001.MP4"


@pytest.mark.parametrize(
    "output",
    [f"{HEX}  {PATH}\n", f"{HEX}  {PATH}", f"{HEX} *{PATH}\n"],
)
def test_a_sha256sum_line_for_the_path_is_read(output: str) -> None:
    assert parse_sha256sum(output, PATH) == HEX


@pytest.mark.parametrize(
    "output",
    [
        "",
        f"{HEX.upper()}  {PATH}\n",  # sha256sum prints lower case
        f"{HEX[:-1]}  {PATH}\n",  # short
        f"{HEX}  {PATH}\n{HEX}  {PATH}\n",  # two answers
        f"{HEX}  /data/dashcam/other.MP4\n",  # another file
        f"{HEX} {PATH}\n",  # one space: not sha256sum's format
        f"\\{HEX}  {PATH}\n",  # an escaped name
        f"sha256sum: {PATH}: No such file or directory\n",
    ],
)
def test_anything_else_confirms_nothing(output: str) -> None:
    with pytest.raises(ValueError):
        parse_sha256sum(output, PATH)


def test_the_remote_path_is_dest_cam_staged() -> None:
    assert remote_path("/data/dashcam", "CAM_C", "DEV1/A.MP4") == "/data/dashcam/CAM_C/DEV1/A.MP4"
    assert remote_path("/data/dashcam/", "CAM_C", "DEV1/A.MP4") == "/data/dashcam/CAM_C/DEV1/A.MP4"
    assert remote_path("/", "CAM_C", "DEV1/A.MP4") == "/CAM_C/DEV1/A.MP4"


def test_remote_commands_quote_their_path() -> None:
    assert sha256sum_command(PATH) == f"sha256sum -- {PATH}"
    assert shlex.split(sha256sum_command("/x/it's here")) == ["sha256sum", "--", "/x/it's here"]
    assert shlex.split(mkdir_command("/x/a b")) == ["mkdir", "-p", "--", "/x/a b"]


@pytest.mark.parametrize(
    ("mode", "ok"), [(0o600, True), (0o400, True), (0o640, False), (0o644, False), (0o700, False)]
)
def test_the_key_must_be_private(tmp_path: Path, mode: int, ok: bool) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not read\n")
    key.chmod(mode)
    problem = key_problem(key)
    if ok:
        assert problem is None
    else:
        assert problem is not None and f"chmod 600 {key}" in problem and f"{mode:04o}" in problem


def test_a_missing_key_says_how_to_make_one(tmp_path: Path) -> None:
    problem = key_problem(tmp_path / "nope")
    assert problem is not None and "does not exist" in problem and "ssh-keygen" in problem
    assert "is not a file" in (key_problem(tmp_path) or "")


def _remote(**kw: object) -> Remote:
    s = UploadSettings.model_validate({"host": "nas.local", "port": 2222, **kw})
    return Remote.from_settings(s, Path("/var/lib/camfleet"))


def test_without_known_hosts_the_first_key_is_trusted_and_kept_in_the_data_folder() -> None:
    r = _remote()
    opts = " ".join(r.ssh_options())
    assert "-o StrictHostKeyChecking=accept-new" in opts
    assert "-o UserKnownHostsFile=/var/lib/camfleet/dashcam/known_hosts" in opts
    strict = " ".join(_remote(known_hosts="/etc/camfleet/nas_known_hosts").ssh_options())
    assert "-o StrictHostKeyChecking=yes" in strict
    assert "-o UserKnownHostsFile=/etc/camfleet/nas_known_hosts" in strict


def test_the_rsync_command_line() -> None:
    r = _remote(connect_timeout_s=2.5)
    argv = rsync_argv(
        "rsync",
        ["--archive", "--partial", "--inplace"],
        r,
        Path("/s/DEV1/A.MP4"),
        PATH,
        repair=False,
        io_timeout_s=30,
    )
    assert argv[:4] == ["rsync", "--archive", "--partial", "--inplace"]
    assert "--checksum" not in argv and "--timeout=30" in argv
    shell = shlex.split(argv[argv.index("-e") + 1])
    assert shell[:5] == ["ssh", "-i", "/etc/camera_service/id_rsa", "-p", "2222"]
    assert (
        "ConnectTimeout=3" in shell and "BatchMode=yes" in shell and "IdentitiesOnly=yes" in shell
    )
    assert argv[-3:] == ["--", "/s/DEV1/A.MP4", f"camera_uploader@nas.local:{PATH}"]
    again = rsync_argv("rsync", ["--archive"], r, Path("/s/A"), PATH, repair=True, io_timeout_s=30)
    assert "--checksum" in again


def test_an_ipv6_nas_is_bracketed_for_rsync() -> None:
    r = _remote(host="fd00::5")
    assert r.rsync_target("/d/x") == "camera_uploader@[fd00::5]:/d/x"
    assert r.where("/d/x") == "rsync:camera_uploader@fd00::5:2222/d/x"
    assert r.fatal_error("Host key verification failed.") is not None
    assert "ssh-keygen -R '[fd00::5]:2222'" in (
        r.fatal_error("Host key verification failed.") or ""
    )
    assert r.fatal_error("rsync error: error in socket IO (code 10)") is None


def test_the_settings_refuse_removing_source_files() -> None:
    with pytest.raises(ValidationError, match="must not remove source files"):
        UploadSettings(rsync_flags=["--archive", "--remove-source-files"])


def test_a_failed_call_is_described_by_its_last_line() -> None:
    done = Completed(
        ("rsync", "-e", "ssh -i key"), 12, "", "one\nrsync error: protocol (code 12)\n"
    )
    assert short_error(done) == "exit 12: rsync error: protocol (code 12)"
    assert short_error(Completed(("x",), 1)) == "exit 1"
