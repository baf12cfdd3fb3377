"""``notifications:`` in both programs' settings (``CAMFLEET_NOTIFICATIONS__*`` in the env).

Every channel is off until its keys are set. Bot tokens and webhook URLs are secrets
(a Discord or Home Assistant webhook URL is its own password): shown as '**********'.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from common.notify.levels import Level

HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def check_http_url(name: str, url: str) -> None:
    """Refuse anything but an http(s) URL with a host, naming the setting."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http:// or https:// URL with a host")


class NotificationSettings(BaseModel):
    """Where alerts go, which of them, and how often the same one may come again."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: SecretStr | None = Field(
        default=None,
        description="A generic JSON webhook (Home Assistant, ...): POST {message, level, "
        "device_id}.",
    )
    discord_webhook_url: SecretStr | None = Field(
        default=None, description="A Discord channel's webhook URL."
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="The bot's token from @BotFather (with telegram_chat_id)."
    )
    telegram_chat_id: str | None = Field(
        default=None, max_length=64, description="The chat the bot writes to."
    )
    telegram_api_base: str = Field(
        default="https://api.telegram.org", description="The Bot API's base URL."
    )
    min_level: Level = Field(
        default=Level.warning, description="INFO, WARNING, ERROR or CRITICAL: less is not sent."
    )
    repeat_window_s: float = Field(
        default=3600.0,
        ge=0,
        le=7 * 86400,
        description="The same alert (same event and device) is not sent again within this.",
    )
    daily_summary: bool = Field(
        default=False, description="Send the spec's daily summary (level INFO, always sent)."
    )
    daily_summary_time: str = Field(
        default="23:00", description="Local time of the daily summary, HH:MM."
    )
    device_id: str | None = Field(
        default=None,
        max_length=64,
        description="The name alerts carry; default the node id (agent) or 'coordinator'.",
    )
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="Per send, per channel.")
    queue_size: int = Field(
        default=100, ge=1, le=10_000, description="Alerts waiting to be sent; more are dropped."
    )

    @field_validator("min_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> Level:
        return Level.parse(value if isinstance(value, (str, Level)) else str(value))

    @field_validator("telegram_chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: object) -> object:
        # YAML reads an unquoted chat id (-1001234567890) as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("daily_summary_time", mode="before")
    @classmethod
    def _sexagesimal(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 23:00 as the number 1380 (23 * 60 + 0).
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @field_validator("daily_summary_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not HH_MM.match(value):
            raise ValueError(f"daily_summary_time must be HH:MM (24 h), not {value!r}")
        return value

    @model_validator(mode="after")
    def _urls_and_pairs(self) -> NotificationSettings:
        for name in ("webhook_url", "discord_webhook_url"):
            value = getattr(self, name)
            if value is not None:
                check_http_url(f"notifications.{name}", value.get_secret_value())
        check_http_url("notifications.telegram_api_base", self.telegram_api_base)
        if (self.telegram_bot_token is None) != (self.telegram_chat_id is None):
            raise ValueError(
                "notifications.telegram_bot_token and notifications.telegram_chat_id go "
                "together: set both or neither"
            )
        return self

    @property
    def summary_at(self) -> tuple[int, int]:
        """``daily_summary_time`` as (hour, minute)."""
        hour, minute = self.daily_summary_time.split(":")
        return int(hour), int(minute)
