"""Signed updates: check a release feed, verify, install side by side, switch, health-check,
roll back (docs/updates.md)."""
