"""A node's mode and logs, reached through the coordinator."""
