"""Timelapse mode: interval stills from the node's camera, stored as ``YYYY/MM/DD/HHMMSS.jpg``.

The pure parts (``schedule``, ``storage``) decide when to capture, where a still goes
and which days to delete; ``runner.Timelapse`` is the thin edge that owns the camera
while a timelapse runs. Nothing here is imported by ``node_agent.schemas`` except the
wire models in ``schemas``, which import nothing from the agent.
"""
