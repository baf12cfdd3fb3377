"""Building the live view from the agent's settings and recorder."""

from __future__ import annotations

from node_agent.liveview.cpu import CpuMeter
from node_agent.liveview.service import LiveView
from node_agent.liveview.settings import LiveViewSettings
from node_agent.liveview.source import LiveSource
from node_agent.liveview.watchdog import Health
from node_agent.recorder.service import Recorder
from node_agent.schemas import RecorderState


def recorder_health(recorder: Recorder, cpu: CpuMeter) -> Health:
    """One watchdog reading: the CPU, and the recording's encode rate and drops."""
    r = recorder.status()
    return Health(
        cpu_percent=cpu.percent(),
        recording=r.state == RecorderState.recording,
        encode_fps=r.encode_fps,
        fps=r.fps,
        dropped_since_start=r.dropped_frames,
        session_id=r.session_id,
    )


def build_liveview(settings: LiveViewSettings, recorder: Recorder) -> LiveView:
    """The live view of ``recorder``'s camera."""
    cpu = CpuMeter(settings.cpu_stat_path)
    return LiveView(
        settings, LiveSource(recorder, settings), lambda: recorder_health(recorder, cpu)
    )
