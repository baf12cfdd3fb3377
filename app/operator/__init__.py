"""Operator commands that move footage: ``camfleet offload``, ``download`` and ``archive``."""
