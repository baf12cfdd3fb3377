"""The coordinator's relay of a node's live view."""
