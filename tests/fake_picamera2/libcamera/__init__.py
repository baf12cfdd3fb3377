"""A fake ``libcamera`` (its Python bindings) for camfleet's tests: only ``controls``.

Only ``tests/`` put this directory on ``sys.path``. The real bindings generate
``controls.rpi.SyncModeEnum`` from libcamera's ``control_ids_rpi.yaml``.
"""

from libcamera import controls

__all__ = ["controls"]
