"""``camfleet user add NAME``: an Argon2 hash of a new password into the coordinator's
settings file (``users:``), or printed as the YAML lines to paste (``--print``)."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from argon2 import PasswordHasher

from app.settings import USER_NAME
from common.fsutil import atomic_write_bytes

MIN_PASSWORD = 8


class UserError(Exception):
    """The command cannot go on; the message says what to do."""


def add_user_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = command("user", "manage the people who sign in to the coordinator's pages")
    sub = p.add_subparsers(dest="user_cmd", required=True, metavar="ACTION")
    add = sub.add_parser(
        "add",
        help="add a user (or change a password): prompts twice, writes its Argon2 hash",
        description="Ask for a password twice and write its Argon2 hash as users.NAME into "
        "the coordinator's settings file (atomically; comments kept). The coordinator reads "
        "it when it starts.",
    )
    add.add_argument("name", metavar="NAME", help="1-64 letters, digits, '.', '_' or '-'")
    add.add_argument(
        "--config",
        metavar="FILE",
        help="the coordinator's YAML settings file (default: $CAMFLEET_COORDINATOR_CONFIG)",
    )
    add.add_argument(
        "--print",
        action="store_true",
        dest="print_only",
        help="print the YAML lines instead of writing a file",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (scripts); no prompt",
    )


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise UserError("the two passwords differ; nothing was written")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    return password


def _key_line(indent: str, name: str, hashed: str) -> str:
    # quoted: a name like "true" or "1" must stay a string key; a hash has no quote in it
    return f"{indent}'{name}': '{hashed}'"


def set_user(text: str, name: str, hashed: str) -> str:
    """``text`` (a YAML settings file) with ``users.name`` set to ``hashed``; comments and
    the rest of the file as they were."""
    lines = text.splitlines()
    top = [i for i, line in enumerate(lines) if re.match(r"users\s*:", line)]
    if not top:
        tail = "" if not text or text.endswith("\n") else "\n"
        updated = f"{text}{tail}users:\n{_key_line('  ', name, hashed)}\n"
    elif not re.fullmatch(r"users\s*:\s*(#.*)?", lines[top[0]]):
        raise UserError(
            "the file's 'users:' is not a block of 'name: hash' lines; change it by hand, "
            "or use --print and paste the line"
        )
    else:
        start = top[0] + 1
        end = start
        indent = ""
        own = re.compile(rf"\s+['\"]?{re.escape(name)}['\"]?\s*:")
        found = None
        while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "\t")):
            line = lines[end]
            if line.strip() and not line.lstrip().startswith("#"):
                indent = indent or line[: len(line) - len(line.lstrip())]
                if own.match(line):
                    found = end
            end += 1
        new_line = _key_line(indent or "  ", name, hashed)
        if found is not None:
            lines[found] = new_line
        else:
            lines.insert(start, new_line)
        updated = "\n".join(lines) + "\n"
    try:
        parsed = yaml.safe_load(updated)
    except yaml.YAMLError as err:
        raise UserError(f"the file would not be valid YAML ({err}); use --print") from err
    if not isinstance(parsed, dict) or parsed.get("users", {}).get(name) != hashed:
        raise UserError("the file's users: could not be updated; use --print and paste the line")
    return updated


def run_user(args: argparse.Namespace, hasher: PasswordHasher | None = None) -> int:
    """``camfleet user add``: 0 written or printed, 2 a problem (said on stderr)."""
    try:
        if not USER_NAME.fullmatch(args.name):
            raise UserError(f"{args.name!r}: a user name is 1-64 letters, digits, '.', '_', '-'")
        config = args.config or os.environ.get("CAMFLEET_COORDINATOR_CONFIG")
        if not args.print_only and not config:
            raise UserError(
                "name the coordinator's settings file with --config FILE (or set "
                "CAMFLEET_COORDINATOR_CONFIG), or use --print to see the lines"
            )
        password = read_password(args.password_stdin)
        hashed = (hasher or PasswordHasher()).hash(password)
        if args.print_only:
            print(f"users:\n{_key_line('  ', args.name, hashed)}")
            return 0
        path = Path(config or "")
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError as err:
            raise UserError(f"{path}: no such settings file (or use --print)") from err
        atomic_write_bytes(path, set_user(text, args.name, hashed).encode(), mode=mode)
    except UserError as err:
        print(f"camfleet user: {err}", file=sys.stderr)
        return 2
    print(f"user {args.name} written to {path}; restart the coordinator to use it")
    return 0
