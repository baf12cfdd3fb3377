"""The recorder's profile ladder: the configured profiles, the one in use, and why better
ones were left (H.265 -> H.264, then resolution)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from node_agent.settings import CameraSettings, Profile

log = logging.getLogger(__name__)


@dataclass
class Profiles:
    """The configured profiles, the one in use, and why better ones were left."""

    camera: CameraSettings
    active: int = 0
    notes: list[str] = field(default_factory=list)
    all: list[Profile] = field(init=False)

    def __post_init__(self) -> None:
        self.all = self.camera.profile_list()

    @property
    def current(self) -> Profile:
        """The profile the next recording uses."""
        return self.all[self.active]

    def bitrate(self, profile: Profile) -> int:
        """``profile``'s bitrate, clamped to the camera's limits."""
        return self.camera.clamp_bitrate(profile.bitrate_bps)

    def fall_back(self, reason: str) -> bool:
        """Leave the current profile for the next one; False when there is none left."""
        note = f"{self.current.name}: {reason}"
        if note not in self.notes:
            self.notes.append(note)
        log.warning("profile %s", note)
        if self.active + 1 >= len(self.all):
            return False
        self.active += 1
        return True
