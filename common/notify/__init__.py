"""Notifications both programs send: Telegram, Discord and a generic webhook, from a
``Notifier`` that filters by level, holds back repeats and sends on its own thread."""

from common.notify.channels import Channel, DiscordChannel, TelegramChannel, WebhookChannel
from common.notify.levels import Level
from common.notify.notifier import Alert, Notifier, build_notifier
from common.notify.settings import NotificationSettings
from common.notify.summary import DailySummary, SummaryScheduler, format_daily_summary

__all__ = [
    "Alert",
    "Channel",
    "DailySummary",
    "DiscordChannel",
    "Level",
    "NotificationSettings",
    "Notifier",
    "SummaryScheduler",
    "TelegramChannel",
    "WebhookChannel",
    "build_notifier",
    "format_daily_summary",
]
