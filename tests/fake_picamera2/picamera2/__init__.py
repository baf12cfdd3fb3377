"""A fake ``picamera2`` package for camfleet's tests (the real one needs a Pi).

Only ``tests/`` put this directory on ``sys.path``. It mirrors the parts of
picamera2's API the camfleet backend calls; ``picamera2._rig`` (not in the real
package) simulates no camera, a busy camera and a sensor that goes silent.
"""

from concurrent.futures import CancelledError, TimeoutError

from picamera2.job import Job
from picamera2.picamera2 import Picamera2
from picamera2.request import CompletedRequest

__all__ = ["CancelledError", "CompletedRequest", "Job", "Picamera2", "TimeoutError"]
