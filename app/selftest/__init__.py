"""Fleet-wide self-test."""
