"""The recorder: video sessions gated, armed, written, hashed and given manifests."""
