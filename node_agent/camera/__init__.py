"""Camera: the backends (one per file) behind ``CameraBackend``, the lock, stills, the frame
clock, the worker thread, discovery and the factory; shared by recorder, timelapse,
self-test and preview."""
