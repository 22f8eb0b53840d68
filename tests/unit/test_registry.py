"""Plugin registries: one class for engines, analyzers and stages; settings validated by `type`."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import ValidationError

from vidwatch.registry import ANALYZER_SETTINGS, STAGE_SETTINGS, PluginSettings, Registry, SettingsRegistry


class EchoSettings(PluginSettings):
    type: Literal["echo"] = "echo"
    times: int = 1


class ShoutSettings(PluginSettings):
    type: Literal["shout"] = "shout"


def test_a_family_registers_factory_and_settings_together() -> None:
    settings = SettingsRegistry("demo")
    family: Registry = Registry("demo", settings=settings)
    family.register("echo", EchoSettings)(lambda s: s.times)
    family.register("shout", ShoutSettings)(lambda s: 0)
    tables = settings.validate([{"type": "echo", "times": 2}, {"type": "shout"}])
    assert tables == [EchoSettings(times=2), ShoutSettings()]
    assert [family[t.type](t) for t in tables] == [2, 0]
    with pytest.raises(ValueError, match="registered twice"):
        family.register("echo")(lambda s: s)


def test_tables_are_refused_with_the_key_and_the_plugin() -> None:
    settings = SettingsRegistry("demo")
    settings.register(EchoSettings)
    settings.register(ShoutSettings)
    with pytest.raises(ValidationError) as caught:
        settings.validate([{"type": "echo", "times": "x"}, {"type": "echo", "tmes": 1}, {"type": "nope"}])
    locs = [error["loc"] for error in caught.value.errors()]
    assert locs == [(0, "echo", "times"), (1, "echo", "tmes"), (2,)]


def test_settings_models_pass_as_they_are_and_a_family_without_settings_refuses_one() -> None:
    settings = SettingsRegistry("demo")
    assert settings.validate([EchoSettings()]) == [EchoSettings()]
    with pytest.raises(ValueError, match="takes no settings model"):
        Registry("engine kind").register("x", EchoSettings)


def test_the_built_in_plugins_register_when_first_needed() -> None:
    assert {"edges", "lines", "sharpness", "ground"} <= set(ANALYZER_SETTINGS.names())
    assert {"dominant_colour", "http_forward"} <= set(STAGE_SETTINGS.names())
