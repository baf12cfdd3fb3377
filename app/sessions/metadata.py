"""A session's notes: stored as a JSON object of strings, edited key by key."""

from __future__ import annotations

import json

from app.errors import BadInput
from app.sessions.models import MAX_METADATA_KEYS, RecordingSession


def metadata_of(session: RecordingSession) -> dict[str, str]:
    """The session's notes (an unreadable column reads as none rather than failing a page)."""
    try:
        value = json.loads(session.metadata_json or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def merge_metadata(current: dict[str, str], patch: dict[str, str | None] | None) -> dict[str, str]:
    """``current`` with ``patch`` applied key by key (null removes); at most
    MAX_METADATA_KEYS keys, or a 422 naming the field."""
    merged = dict(current)
    for key, value in (patch or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_METADATA_KEYS:
        problem = (
            f"a session keeps at most {MAX_METADATA_KEYS} notes; this change would leave "
            f"{len(merged)} (send a key as null to remove it)"
        )
        raise BadInput(f"metadata: {problem}", [{"field": "body.metadata", "message": problem}])
    return merged
