"""Audio metrics for the agent's ``/metrics``: a collector over ``NodeAudio.status``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node_agent.audio.schemas import AudioStatus


class AudioCollector(Collector):
    """Tones played per kind, tone failures, tones on/off, the audio track."""

    def __init__(self, status: Callable[[], AudioStatus], node_id: str, cam_id: str) -> None:
        self._status = status
        self._ids = [node_id, cam_id]

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        s = self._status()
        labels = ["node", "cam_id"]
        tones = CounterMetricFamily(
            "camfleet_audio_tones",
            "Tones spawned since the agent started",
            labels=[*labels, "kind"],
        )
        for kind, count in sorted(s.tones_played.items()):
            tones.add_metric([*self._ids, kind], count)
        yield tones
        errors = CounterMetricFamily(
            "camfleet_audio_tone_errors", "Tones that failed to play", labels=labels
        )
        errors.add_metric(self._ids, s.tone_errors)
        yield errors
        on = GaugeMetricFamily("camfleet_audio_tones_enabled", "1 when tones are on", labels=labels)
        on.add_metric(self._ids, 1 if s.tones else 0)
        yield on
        track = GaugeMetricFamily(
            "camfleet_audio_track_enabled", "1 when recordings carry audio", labels=labels
        )
        track.add_metric(self._ids, 1 if s.track else 0)
        yield track
        degraded = GaugeMetricFamily(
            "camfleet_audio_degraded_states", "Degraded states the node is in now", labels=labels
        )
        degraded.add_metric(self._ids, len(s.degraded))
        yield degraded
