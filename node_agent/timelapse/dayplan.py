"""One day's capture window, as a pure function of the date and the settings.

``window: fixed`` takes ``start_time``/``end_time`` on that date in the local zone;
``window: sun`` takes sunrise and sunset at ``latitude``/``longitude`` (astral, the
sun's upper limb at the horizon with refraction: the times almanacs publish), each
moved by its offset. Durations are counted on the UTC line, so a window across a
daylight-saving change is as long as it really is (a 01:00-05:00 window lasts 3 h on
the spring-forward night). At high latitude a day with no sunrise is *polar night*
(no window: nothing captured, ``expected_photos`` 0) and a day with no sunset is
*polar day* (the whole local day, midnight to midnight).

Slot ``k`` of a window is due at ``start + k * interval`` and is taken while it is
before ``end``, so ``expected_photos = ceil(window / interval)``.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass
from typing import Any

import astral
import astral.sun

from node_agent.timelapse.settings import TimelapseSettings

POLAR_DAY = "polar day: the sun does not set, the whole day is captured"
POLAR_NIGHT = "polar night: the sun does not rise, nothing is captured"


@dataclass(frozen=True)
class DayPlan:
    """One day's window: ``start``/``end`` are aware local datetimes, None without one."""

    date: dt.date
    start: dt.datetime | None
    end: dt.datetime | None
    interval_s: float
    expected_photos: int
    window: str = "none"
    note: str = ""

    @property
    def captures(self) -> bool:
        """Whether the day has a window to capture in."""
        return self.start is not None and self.end is not None and self.end > self.start

    def today_fields(self) -> dict[str, Any]:
        """The status file's ``today`` (the observability spec's names, bar photos_captured)."""
        return {
            "date": self.date.isoformat(),
            "expected_photos": self.expected_photos,
            "start_time": None if self.start is None else f"{self.start:%H:%M:%S}",
            "end_time": None if self.end is None else f"{self.end:%H:%M:%S}",
            "interval_seconds": self.interval_s,
        }


def zone(settings: TimelapseSettings, date: dt.date) -> dt.tzinfo:
    """The window's zone: ``timezone`` when set, else the system's offset at that day's noon.

    The system's zone is only known to Python as an offset per instant; noon's offset is
    the one sunrise and sunset (and office hours) fall in, even on a day the clocks change.
    """
    if settings.timezone is not None:
        return zoneinfo.ZoneInfo(settings.timezone)
    tz = dt.datetime.combine(date, dt.time(12)).astimezone().tzinfo
    assert tz is not None
    return tz


def local_at(date: dt.date, t: dt.time, settings: TimelapseSettings) -> dt.datetime:
    """``date`` at wall time ``t`` in the window's zone (a time skipped by a clock change
    lands after it, as the clock shows it)."""
    if settings.timezone is None:
        return dt.datetime.combine(date, t).astimezone()  # the system's rules, via mktime
    tz = zoneinfo.ZoneInfo(settings.timezone)
    return dt.datetime.combine(date, t, tzinfo=tz).astimezone(dt.UTC).astimezone(tz)


def midnight_after(date: dt.date, settings: TimelapseSettings) -> dt.datetime:
    """The start of the next local day."""
    return local_at(date + dt.timedelta(days=1), dt.time(0), settings)


def expected_photos(start: dt.datetime, end: dt.datetime, interval_s: float) -> int:
    """Slots at ``start + k * interval`` before ``end``: ``ceil(window / interval)``."""
    window_ns = round((end.timestamp() - start.timestamp()) * 1e9)
    interval_ns = round(interval_s * 1e9)
    if window_ns <= 0:
        return 0
    return -(-window_ns // interval_ns)


def _sun_window(
    date: dt.date, settings: TimelapseSettings
) -> tuple[dt.datetime, dt.datetime] | str:
    assert settings.latitude is not None and settings.longitude is not None
    observer = astral.Observer(latitude=settings.latitude, longitude=settings.longitude)
    tz = zone(settings, date)
    try:
        rise = astral.sun.sunrise(observer, date, tzinfo=tz)
        fall = astral.sun.sunset(observer, date, tzinfo=tz)
    except ValueError:
        # No sunrise or no sunset on this date: which one it is follows from the sun at noon.
        noon = local_at(date, dt.time(12), settings)
        if astral.sun.elevation(observer, noon) > 0:
            return POLAR_DAY
        return POLAR_NIGHT
    if fall <= rise:
        # Sunset the next calendar morning (near the polar circle, or an offset zone):
        # the day's light runs to midnight.
        fall = midnight_after(date, settings)
    return rise, fall


def day_plan(date: dt.date, settings: TimelapseSettings) -> DayPlan:
    """The window, interval and expected photo count of ``date`` (see the module docstring)."""
    interval = settings.interval_s
    if settings.window == "none":
        return DayPlan(date, None, None, interval, 0, "none", "no window: capture when started")
    note = ""
    if settings.window == "fixed":
        assert settings.start_time is not None and settings.end_time is not None
        start = local_at(date, settings.start_time, settings)
        end = local_at(date, settings.end_time, settings)
    else:
        sun = _sun_window(date, settings)
        if sun == POLAR_NIGHT:
            return DayPlan(date, None, None, interval, 0, "sun", POLAR_NIGHT)
        if sun == POLAR_DAY:
            start, end, note = (
                local_at(date, dt.time(0), settings),
                midnight_after(date, settings),
                POLAR_DAY,
            )
        else:
            assert not isinstance(sun, str)
            rise, fall = sun
            start = rise + dt.timedelta(minutes=settings.sunrise_offset_min)
            end = fall + dt.timedelta(minutes=settings.sunset_offset_min)
            # Offsets never push the window out of its own day.
            start = max(start, local_at(date, dt.time(0), settings))
            end = min(end, midnight_after(date, settings))
        start = start.replace(microsecond=0) + dt.timedelta(
            seconds=math.ceil(start.microsecond / 1e6)
        )
        end = end.replace(microsecond=0)
    if end <= start:
        return DayPlan(
            date, None, None, interval, 0, settings.window, "the offsets leave no window"
        )
    return DayPlan(
        date, start, end, interval, expected_photos(start, end, interval), settings.window, note
    )
