"""Storage: the recordings folder and its housekeeper (status, confirm by checksum, retention
of offloaded footage only, downloads with Range) and their routes."""
