"""The fleet audio toggle: send camera.audio to every target node at once."""

from __future__ import annotations

from app.audio.models import AudioFleetResult, AudioFleetToggle, AudioNodeResult
from app.context import Fleet
from app.fleet.results import call_fields
from app.fleet.wire import AudioToggle
from app.nodes import service as node_service


async def set_audio(fleet: Fleet, body: AudioFleetToggle) -> AudioFleetResult:
    """Turn the audio track on or off on every target node; a node that is recording
    refuses (409) and keeps its setting, the others take it."""
    targets = await fleet.store.run(lambda db: node_service.addresses(db, fleet, body.node_ids))
    req = AudioToggle(enabled=body.enabled)
    calls = await fleet.fanout.each(targets, "audio", lambda a: fleet.client.set_audio(a, req))
    nodes = [
        AudioNodeResult(
            **call_fields(c),
            enabled=c.value.enabled if c.value else None,
        )
        for c in calls
    ]
    ok = sum(1 for n in nodes if n.ok)
    return AudioFleetResult(enabled=body.enabled, ok=ok, failed=len(nodes) - ok, nodes=nodes)
