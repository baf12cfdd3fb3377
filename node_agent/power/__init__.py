"""Power: battery and AC from a provider, thresholds that finish every file before the
battery runs out, and the adapters that switch the camera's USB power and shut down.

One provider per file (``none``, ``lifepo4wered``, ``sysfs``, ``command``), chosen by
``power.provider``; ``policy`` is the pure decision; ``monitor`` is the loop that acts on
it; ``usb`` and ``host`` are the adapters every action goes through; ``preflight`` checks
the programs at start, ``metrics`` renders the status, ``wiring`` hooks it into the agent.
"""
