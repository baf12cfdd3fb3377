"""The node's network mode (wired, wifi, access point, ...), read from sysfs and procfs."""
