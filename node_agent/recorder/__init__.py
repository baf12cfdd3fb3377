"""The recorder: camera backends, the MP4 writer, the scheduled start, manifests."""
