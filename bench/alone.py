"""One benchmark section on its own: ``python -m bench.report_X [--quick] --out PATH``.

The full run (``make bench``) takes twenty minutes; a section alone takes one or two. The
summary row(s) and the section are written to ``--out`` as ``make bench`` would write
them, and the work folder is kept when the section fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.common import BenchError, atomic_write_text
from bench.plan import Plan

R = TypeVar("R")


def run_alone(
    name: str,
    doc: str | None,
    measure: Callable[[Plan, Path], R],
    render: Callable[[R], list[str]],
    verified: Callable[[R], bool],
    argv: list[str] | None = None,
    errors: tuple[type[Exception], ...] = (BenchError,),
) -> int:
    """Parse the arguments, ``measure`` in a fresh work folder, write ``render``'s lines;
    exit 0 when the result is ``verified``, 1 otherwise (or when the section failed)."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.report_{name}", description=doc)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the section")
    args = parser.parse_args(argv)
    from bench.run import FULL, QUICK

    root = Path(tempfile.mkdtemp(prefix=f"camfleet-bench-{name}-"))
    try:
        result = measure(QUICK if args.quick else FULL, root)
    except errors as err:
        print(f"{name} bench failed: {err}", file=sys.stderr)
        print(f"data and logs kept in {root}", file=sys.stderr)
        return 1
    text = "\n".join(render(result))
    atomic_write_text(args.out, text.rstrip() + "\n")
    print(text, flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return 0 if verified(result) else 1
