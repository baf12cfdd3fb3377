"""Tones through ALSA: the start beep at the fleet's start instant, Lock View's tone, and
short tones for degraded states."""
