"""Telemetry: one collector per file, each reporting whether it succeeded (``Reading``).

| collector | module | source |
|---|---|---|
| clock | ``chrony.ClockMonitor`` | ``chronyc -c -m tracking sources sourcestats`` |
| disk | ``disk.collect_disk`` | ``statvfs`` of the recordings disk |
| thermal | ``thermal.read_thermal`` | a sysfs thermal zone |

Power and network collectors go beside these, one file each.
"""
