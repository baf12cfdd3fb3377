"""``make_backend``: the camera ``camera.source`` names, constructed but not opened.

Each backend module is imported only when chosen, so a hardware library is loaded
only on a node that uses it.
"""

from __future__ import annotations

import logging

from node_agent.camera.discovery import find_capture_devices
from node_agent.camera.protocol import SOURCES, CameraBackend, CameraError
from node_agent.camera.survey import survey_cameras

log = logging.getLogger(__name__)


def make_backend(
    source: str,
    width: int,
    height: int,
    fps: float,
    camera_id: str = "",
    *,
    device: str | None = None,
) -> CameraBackend:
    """The backend ``camera.source`` names, constructed but not opened (``open()`` acquires).

    ``auto`` takes camera.device when it is set, else the first CSI camera picamera2
    sees, else the first V4L2 capture device; with none it raises CameraError saying
    what was tried and found.
    """
    if source == "synthetic":
        from node_agent.camera.synthetic import SyntheticCamera

        return SyntheticCamera(width, height, fps, camera_id)
    if source == "picamera2":
        from node_agent.camera.picamera2 import Picamera2Camera

        return Picamera2Camera(width, height, fps)
    if source == "v4l2":
        from node_agent.camera.v4l2 import V4l2Camera

        if device is None:
            devices, problem = find_capture_devices()
            if not devices:
                raise CameraError(f"camera.source is v4l2 but {problem}")
            device = str(devices[0].path)
        return V4l2Camera(device, width, height, fps)
    if source == "auto":
        survey = survey_cameras(device)
        choice = survey.choice
        if choice == "picamera2":
            log.info("camera.source auto: %s", survey.summary())
            return make_backend("picamera2", width, height, fps, camera_id)
        if choice == "v4l2":
            log.info("camera.source auto: %s", survey.summary())
            chosen = device if device is not None else str(survey.v4l2_devices[0].path)
            return make_backend("v4l2", width, height, fps, camera_id, device=chosen)
        raise CameraError(f"no camera found: {survey.findings()}")
    raise CameraError(f"unknown camera source {source!r}; choose one of: {', '.join(SOURCES)}")
