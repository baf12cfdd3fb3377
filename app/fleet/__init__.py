"""Talking to agents: the typed client, its HTTP transport, the status poller."""
