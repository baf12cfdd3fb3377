"""Recordings of the fleet."""
