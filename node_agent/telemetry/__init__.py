"""Telemetry collectors, one per source (clock, disk)."""
