"""Live updates: the coordinator's cached state pushed to pages as server-sent events."""
