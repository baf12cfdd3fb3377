"""Storage: the recordings folder (listing, safe name resolution) and its routes."""
