"""What a staged file's manifest says after an upload attempt, and the one place a staged copy
is deleted: only after the NAS's own SHA-256 matched and that was written down.

Order, each step on disk (temp + fsync + rename) before the next: the manifest marked
offloaded (``offloaded_at_ns``, ``offloaded_to``), then the staged copy deleted and its
folder fsynced, then the manifest again with ``staging_deleted_at_ns``. A run stopped
between the two leaves a confirmed file in staging, which ``finish_confirmed`` deletes.
"""

from __future__ import annotations

import time

from common.fsutil import fsync_dir
from node_agent.commands import Completed
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.remote import parse_sha256sum, short_error
from node_agent.dashcam.schemas import IngestManifest


def checksum_error(done: Completed, dest: str, expected: str) -> str | None:
    """Why ``sha256sum``'s answer ``done`` does not confirm ``dest``; None when it does."""
    if not done.ok:
        return f"remote sha256sum failed: {short_error(done)}"
    try:
        got = parse_sha256sum(done.stdout, dest)
    except ValueError as err:
        return f"remote sha256sum: {err}"
    if got != expected:
        return f"checksum mismatch on the NAS: {dest} has sha256 {got}, expected {expected}"
    return None


def record_failure(ledger: Ledger, m: IngestManifest, attempts: int, error: str) -> None:
    """Not confirmed: count the attempts, keep the error; the staged copy stays."""
    update = {"upload_attempts": m.upload_attempts + attempts, "last_error": error[:1000]}
    ledger.write(m.model_copy(update=update))


def record_confirmed(ledger: Ledger, m: IngestManifest, attempts: int, where: str) -> None:
    """Confirmed by the NAS: write that, then delete the staged copy (and write that)."""
    confirmed = m.model_copy(
        update={
            "upload_attempts": m.upload_attempts + attempts,
            "last_error": None,
            "offloaded": True,
            "offloaded_at_ns": time.time_ns(),
            "offloaded_to": where,
        }
    )
    ledger.write(confirmed)  # the confirmation is on disk before anything is deleted
    delete_staged(ledger, confirmed)


def delete_staged(ledger: Ledger, m: IngestManifest) -> None:
    """Delete a confirmed file's staged copy, record it, and drop the folders it emptied."""
    if not m.offloaded:
        raise ValueError(f"{m.staged_path} is not confirmed on the NAS: its copy stays")
    staged = ledger.staged_file(m)
    staged.unlink(missing_ok=True)
    fsync_dir(staged.parent)
    ledger.write(m.model_copy(update={"staging_deleted_at_ns": time.time_ns()}))
    folder = staged.parent
    while folder != ledger.staging and ledger.staging in folder.parents:
        try:
            folder.rmdir()  # only if empty
        except OSError:
            break
        folder = folder.parent


def finish_confirmed(ledger: Ledger) -> int:
    """Delete the staged copies of files already confirmed; returns how many."""
    done = [m for m in ledger.manifests() if m.offloaded and m.staging_deleted_at_ns is None]
    for m in done:
        delete_staged(ledger, m)
    return len(done)
