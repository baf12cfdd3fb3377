"""The coordinator's notifications: the fleet's events (a node offline, a clock bound
over a frame period, a node's battery, an offload that failed or came in corrupt)."""
