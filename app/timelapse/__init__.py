"""Timelapse across the fleet: start and stop every node's timelapse mode at once."""
