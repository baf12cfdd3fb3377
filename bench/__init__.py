"""``make bench``: start skew, fan-out and checksum-at-stop figures, written to docs/benchmarks.md.

Run ``python -m bench.run`` (``--quick`` for a smoke-sized run). The figures are
reported, never asserted: each is printed beside its target with whether this run met it.
"""
