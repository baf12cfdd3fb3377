"""The release feed: GitHub Releases' JSON, parsed strictly and bounded.

``parse_feed`` is pure (bytes in, releases or ``FeedError`` out); ``fetch_feed`` is the
one HTTP call, capped in size and time. A release is usable when it is not a draft and
carries an archive (``camfleet-<v>.tar.gz`` or a ``camfleet-<v>-*.whl`` wheel) with its
``.sha256`` and ``.sig`` beside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from packaging.version import InvalidVersion, Version

from node_agent.updater.schemas import MAX_NOTES, VERSION_PATTERN

MAX_FEED_BYTES = 2 * 1024 * 1024
MAX_RELEASES = 200


class FeedError(Exception):
    """The feed could not be read or makes no sense; the message says why."""


@dataclass(frozen=True)
class Asset:
    """One file of a release."""

    name: str
    url: str
    size: int


@dataclass(frozen=True)
class Release:
    """A usable release: its version, notes and the three files it is installed from."""

    version: str
    name: str
    notes: str
    published_at: str | None
    prerelease: bool
    archive: Asset
    sha256: Asset
    sig: Asset

    @property
    def key(self) -> Version:
        """For ordering releases."""
        return Version(self.version)


def version_of(tag: str) -> str | None:
    """``v1.2.3`` → ``1.2.3``; None when it is no version a folder may be named after."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    if not re.match(VERSION_PATTERN, text):
        return None
    try:
        Version(text)
    except InvalidVersion:
        return None
    return text


def _archive(version: str, assets: dict[str, Asset]) -> Asset | None:
    tar = assets.get(f"camfleet-{version}.tar.gz")
    if tar is not None:
        return tar
    wheels = sorted(
        n for n in assets if n.startswith(f"camfleet-{version}-") and n.endswith(".whl")
    )
    return assets[wheels[0]] if wheels else None


def _assets(raw: Any) -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    if not isinstance(raw, list):
        return found
    for item in raw[:100]:
        if not isinstance(item, dict):
            continue
        name, url, size = item.get("name"), item.get("browser_download_url"), item.get("size")
        if (
            isinstance(name, str)
            and isinstance(url, str)
            and url.startswith(("http://", "https://"))
            and isinstance(size, int)
            and not isinstance(size, bool)
            and size >= 0
        ):
            found[name] = Asset(name, url, size)
    return found


def parse_feed(data: bytes) -> tuple[list[Release], list[str]]:
    """The usable releases, newest first, and a line per release that was skipped (why)."""
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"the feed is {len(data)} bytes, more than the {MAX_FEED_BYTES} allowed")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise FeedError(f"the feed is not JSON: {err}") from err
    if not isinstance(doc, list):
        raise FeedError("the feed is not a list of releases (GitHub Releases' JSON format)")
    releases: list[Release] = []
    skipped: list[str] = []
    for item in doc[:MAX_RELEASES]:
        if not isinstance(item, dict):
            skipped.append("an entry that is not an object")
            continue
        tag = item.get("tag_name")
        version = version_of(tag) if isinstance(tag, str) else None
        if version is None:
            skipped.append(f"tag {str(tag)[:40]!r}: not a version")
            continue
        if item.get("draft") is True:
            skipped.append(f"{version}: a draft")
            continue
        assets = _assets(item.get("assets"))
        archive = _archive(version, assets)
        if archive is None:
            skipped.append(f"{version}: no camfleet-{version}.tar.gz (or wheel) asset")
            continue
        sha, sig = assets.get(archive.name + ".sha256"), assets.get(archive.name + ".sig")
        if sha is None or sig is None:
            skipped.append(f"{version}: {archive.name} has no .sha256 and .sig beside it")
            continue
        body, name, published = item.get("body"), item.get("name"), item.get("published_at")
        releases.append(
            Release(
                version=version,
                name=name[:200] if isinstance(name, str) else version,
                notes=body[:MAX_NOTES] if isinstance(body, str) else "",
                published_at=published[:64] if isinstance(published, str) else None,
                prerelease=item.get("prerelease") is True,
                archive=archive,
                sha256=sha,
                sig=sig,
            )
        )
    releases.sort(key=lambda r: r.key, reverse=True)
    return releases, skipped


def pick(releases: list[Release], version: str | None, allow_prerelease: bool) -> Release | None:
    """The release asked for, or the newest one allowed; None when there is none."""
    for release in releases:
        if version is not None:
            if release.version == version:
                return release
        elif allow_prerelease or not (release.prerelease or release.key.is_prerelease):
            return release
    return None


def is_newer(candidate: str, current: str) -> bool:
    """Whether ``candidate`` is a later version than ``current`` (an unparsable current:
    anything is newer)."""
    try:
        return Version(candidate) > Version(current)
    except InvalidVersion:
        return True


def fetch_feed(url: str, timeout_s: float) -> bytes:
    """The feed's bytes (at most MAX_FEED_BYTES); FeedError on any failure."""
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=True) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as answer,
        ):
            if answer.status_code != 200:
                raise FeedError(f"the feed {url} answered HTTP {answer.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise FeedError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as err:
        raise FeedError(f"cannot read the feed {url}: {err.__class__.__name__}: {err}") from err
