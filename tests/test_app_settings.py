"""``inclinet_site.conf.AppSettings``: the one way apps read their tunables (issue 17)."""
from __future__ import annotations

from typing import Any

import pytest

from inclinet_site.conf import AppSettings

conf = AppSettings("DEMO", {"SIZE": 512, "RATE": 2.0, "ON": False, "LIMITS": {}, "NAME": "x", "OPTIONAL": None})


def test_the_default_when_neither_settings_nor_environment_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_SIZE", raising=False)
    assert conf("SIZE") == 512
    assert conf("OPTIONAL") is None


def test_the_environment_typed_like_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SIZE", "256")
    monkeypatch.setenv("DEMO_RATE", "0.5")
    monkeypatch.setenv("DEMO_ON", "yes")
    monkeypatch.setenv("DEMO_LIMITS", '{"quick": 60}')
    monkeypatch.setenv("DEMO_OPTIONAL", "bf16")
    assert (conf("SIZE"), conf("RATE"), conf("ON"), conf("LIMITS"), conf("OPTIONAL")) == (
        256, 0.5, True, {"quick": 60}, "bf16")


def test_django_settings_win_over_the_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_NAME", "from-env")
    settings.DEMO_NAME = "from-settings"
    assert conf("NAME") == "from-settings"
    settings.DEMO_ON = False  # a false value is a value, not "unset"
    monkeypatch.setenv("DEMO_ON", "1")
    assert conf("ON") is False


def test_an_undeclared_name_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(KeyError, match="DEMO_TYPO"):
        conf("TYPO")


def test_zoo_media_urls_follow_the_environment_switch(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from labeling.selectors import _serve_media_directly

    settings.DEBUG = True
    monkeypatch.setenv("LABELING_SERVE_MEDIA_DIRECTLY", "0")
    assert _serve_media_directly() is False  # "0" from the environment is off, not a true string
    monkeypatch.setenv("LABELING_SERVE_MEDIA_DIRECTLY", "true")
    settings.DEBUG = False
    assert _serve_media_directly() is True
    monkeypatch.delenv("LABELING_SERVE_MEDIA_DIRECTLY")
    assert _serve_media_directly() is False  # unset: as DEBUG


def test_a_setting_without_a_default_is_typed_as_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    typed = AppSettings("DEMO", {"SWITCH": None}, types={"SWITCH": bool})
    monkeypatch.setenv("DEMO_SWITCH", "0")
    assert typed("SWITCH") is False
    monkeypatch.setenv("DEMO_SWITCH", "on")
    assert typed("SWITCH") is True
