"""The audio routes: the start beep, the audio toggle and the audio status."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from node_agent.audio.schemas import AudioStatus, AudioToggle, AudioToggleResult
from node_agent.audio.service import NodeAudio
from node_agent.responses import error_responses
from node_agent.schemas import BeepRequest, BeepResult


def make_router(audio: NodeAudio) -> APIRouter:
    """``POST /api/v1/recording/beep``, ``GET`` and ``PUT /api/v1/audio``."""
    router = APIRouter()

    @router.post(
        "/api/v1/recording/beep",
        response_model=BeepResult,
        summary="Every node has armed: play the start tone at at_ns (fleet time); "
        "idempotent by command_id",
        responses=error_responses(409),
    )
    async def beep(body: BeepRequest) -> BeepResult:
        return audio.beep(body)

    @router.get(
        "/api/v1/audio",
        response_model=AudioStatus,
        summary="Tones on or off, the last tones, the audio track setting",
        responses=error_responses(),
    )
    async def audio_status() -> AudioStatus:
        return audio.status()

    @router.put(
        "/api/v1/audio",
        response_model=AudioToggleResult,
        summary="Record an audio track (camera.audio) or not; 409 while recording",
        responses=error_responses(409),
    )
    async def set_audio(body: AudioToggle) -> AudioToggleResult:
        # Under the recorder's lock, which a start holds while it arms: off the loop.
        return await asyncio.to_thread(audio.set_track, body)

    return router
