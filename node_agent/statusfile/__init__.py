"""The status file: one JSON document on tmpfs that says what this node is doing.

``writer`` reads and merges it (stdlib only, so a program outside camfleet can import
or copy it and add its own fields with ``update_status``); ``service`` keeps camfleet's
fields in it, rewritten after each timelapse capture and each state change; ``routes``
serves it and the newest still and video (``GET /status``, ``/latest/photo``,
``/latest/video``) with ``/logs`` and ``/config``. See docs/status-file.md.
"""
