"""Sessions of the fleet."""
