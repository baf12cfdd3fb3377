"""The fleet's clock: chrony telemetry lives in ``telemetry/chrony.py``; this package renders
chrony's configuration for a role and switches it (``camfleet sync role``)."""
