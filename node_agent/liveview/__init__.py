"""The live view ("Grandma Mode"): a small MJPEG stream of the running camera that gives way
to the recording."""
