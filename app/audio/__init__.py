"""The fleet audio toggle: camera.audio on every node (or on node_ids)."""
