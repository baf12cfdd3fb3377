"""The agent's notifications: which of its events become alerts (``alerts``), and the
daily summary (``summary``); the channels and the notifier are in ``common.notify``."""
