"""The three channels: Telegram's Bot API, a Discord webhook and a generic JSON webhook.

Each one turns an alert into one POST. They are called only from the notifier's worker
thread, with its ``httpx.Client`` (and its time-out); an HTTP error status raises, so
the notifier counts it as a failure. ``secrets`` are the strings a failure's log line
must never show (a bot token sits in Telegram's URL path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    from common.notify.notifier import Alert


class Channel(Protocol):
    """Somewhere an alert goes."""

    @property
    def name(self) -> str:
        """'telegram', 'discord' or 'webhook': for logs."""
        ...

    def send(self, client: httpx.Client, alert: Alert) -> None:
        """POST the alert; raise on any failure (the notifier logs and counts it)."""
        ...

    def secrets(self) -> list[str]:
        """What must not appear in a log line about this channel."""
        ...


@dataclass(frozen=True)
class TelegramChannel:
    """``{api_base}/bot{token}/sendMessage`` with ``chat_id`` and ``text``.

    No ``parse_mode``: file names and node ids hold underscores, which Markdown would
    take for emphasis and Telegram would refuse the message.
    """

    token: str
    chat_id: str
    api_base: str = "https://api.telegram.org"
    name: str = "telegram"

    def send(self, client: httpx.Client, alert: Alert) -> None:
        url = f"{self.api_base.rstrip('/')}/bot{self.token}/sendMessage"
        client.post(url, json={"chat_id": self.chat_id, "text": alert.text}).raise_for_status()

    def secrets(self) -> list[str]:
        return [self.token]


@dataclass(frozen=True)
class DiscordChannel:
    """A Discord webhook: ``{"content": text}`` (Discord caps a message at 2000 characters)."""

    url: str
    name: str = "discord"

    def send(self, client: httpx.Client, alert: Alert) -> None:
        client.post(self.url, json={"content": alert.text[:2000]}).raise_for_status()

    def secrets(self) -> list[str]:
        return [self.url]


@dataclass(frozen=True)
class WebhookChannel:
    """Any JSON webhook (Home Assistant, Slack relays, ...): the spec's body
    ``{"message", "level", "device_id"}``."""

    url: str
    name: str = "webhook"

    def send(self, client: httpx.Client, alert: Alert) -> None:
        body = {"message": alert.message, "level": alert.level.value, "device_id": alert.device_id}
        client.post(self.url, json=body).raise_for_status()

    def secrets(self) -> list[str]:
        return [self.url]
