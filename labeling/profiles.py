"""A volunteer's profile: created on first use, and the display preferences the measuring page remembers."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from core.errors import InvalidInput

from .models import DisplayMode, VolunteerProfile


def profile_get_or_create(*, user: AbstractBaseUser) -> VolunteerProfile:
    profile, _ = VolunteerProfile.objects.get_or_create(user=user)
    return profile


def profile_update(*, user: AbstractBaseUser, display_mode: str | None = None, inverted: bool | None = None,
                   zoom: float | None = None, tutorial_done: bool | None = None) -> VolunteerProfile:
    profile = profile_get_or_create(user=user)
    if display_mode is not None:
        if display_mode not in DisplayMode.values:
            raise InvalidInput(f"display_mode must be one of {', '.join(DisplayMode.values)}.")
        profile.display_mode = display_mode
    if inverted is not None:
        profile.inverted = inverted
    if zoom is not None:
        if not 0.2 <= zoom <= 5:
            raise InvalidInput("zoom must be between 0.2 and 5.")
        profile.zoom = zoom
    if tutorial_done is not None:
        profile.tutorial_done = tutorial_done
    profile.save()
    return profile
