"""Web of the fleet."""
