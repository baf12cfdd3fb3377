"""Offload: pull recordings into the coordinator's archive, verify, then confirm to the nodes."""
