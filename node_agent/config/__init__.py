"""The node's settings file over the API: ``GET/PUT /api/v1/config``."""
