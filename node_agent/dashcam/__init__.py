"""The dashcam mode: a Pi beside a USB dashcam that, when it gets home, switches the camera
to data mode, copies its footage with checksums, uploads it with rsync to a NAS confirmed by
the NAS's own SHA-256, and only then deletes anything."""
