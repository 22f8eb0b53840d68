"""Registries of plugins (engines, analyzers, crop stages): their factories, and their settings models.

A plugin is one module: a settings model (a :class:`PluginSettings` with ``type:
Literal[...]``), a class, and an explicit registration. :class:`Registry` holds the
factories by name; :class:`SettingsRegistry` holds the settings models by ``type`` and
validates a configuration's ``[[analyzers]]`` / ``[[stages]]`` tables through them, so the
configuration needs no import of any plugin: a family's built-in package is imported the
first time a table of that family is validated.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar, Union, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

F = TypeVar("F", bound=Callable[..., object])


class Registry(dict[str, F]):
    """Factories by name (engines, analyzers, crop stages: one instance each); a name twice is an error.

    ``settings``: where the family's settings models go (``register(name, Settings)``), for
    a family configured as a list of ``type``-tagged tables.

    >>> plugins: Registry = Registry("plugin")
    >>> @plugins.register("echo")
    ... def echo(x): return x
    >>> plugins.names(), plugins["echo"](1)
    (['echo'], 1)
    """

    def __init__(self, what: str, error: type[Exception] = ValueError, *,
                 settings: SettingsRegistry | None = None) -> None:
        super().__init__()
        self.what = what
        self.error = error
        self.settings = settings

    def register(self, name: str, settings: type[PluginSettings] | None = None) -> Callable[[F], F]:
        """Register a factory under ``name`` (and its settings model, where the family has them)."""
        if settings is not None:
            if self.settings is None:
                raise self.error(f"{self.what} {name!r}: this family takes no settings model")
            self.settings.register(settings)

        def decorator(factory: F) -> F:
            if name in self:
                raise self.error(f"{self.what} {name!r} registered twice")
            self[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self)


class PluginSettings(BaseModel):
    """Base of every plugin's settings: unknown keys are refused, values frozen; ``type`` names the plugin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


S = TypeVar("S", bound=type[PluginSettings])


class SettingsRegistry:
    """Settings models of one plugin family by their ``type``; validates that family's tables.

    >>> [s.type for s in STAGE_SETTINGS.validate([{"type": "dominant_colour"}])]
    ['dominant_colour']
    """

    def __init__(self, family: str, builtin: str | None = None) -> None:
        """``builtin``: the package whose import registers the family's built-in plugins."""
        self.family = family
        self.builtin = builtin
        self._models: dict[str, type[PluginSettings]] = {}
        self._adapter: TypeAdapter[list[Any]] | None = None

    def register(self, model: S) -> S:
        """Register ``model`` under the default of its ``type`` field; a duplicate is an error."""
        name = cast(type[PluginSettings], model).model_fields["type"].default
        if not isinstance(name, str):
            raise ValueError(f"{self.family} settings {model.__name__}: expected a default for `type`, got {name!r}")
        if name in self._models and self._models[name] is not model:
            raise ValueError(f"{self.family} settings {name!r} registered twice")
        self._models[name] = model
        self._adapter = None
        return model

    def names(self) -> list[str]:
        self._load_builtin()
        return sorted(self._models)

    def _load_builtin(self) -> None:
        if self.builtin is not None:
            importlib.import_module(self.builtin)  # registers the built-in plugins (once)

    def validate(self, value: Any) -> Any:
        """Each table as its plugin's settings model (chosen by ``type``); models pass as they are."""
        if not isinstance(value, Sequence) or isinstance(value, str):
            return value  # the list check reports it
        if all(isinstance(item, PluginSettings) for item in value):
            return list(value)
        if self._adapter is None:
            self._load_builtin()
            models = tuple(self._models.values())
            if not models:
                raise ValueError(f"no {self.family} plugins are registered")
            item: Any = models[0] if len(models) == 1 else Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007
            self._adapter = TypeAdapter(list[item])
        return self._adapter.validate_python(list(value))


ANALYZER_SETTINGS = SettingsRegistry("analyzer", builtin="vidwatch.analyzers")
STAGE_SETTINGS = SettingsRegistry("stage", builtin="vidwatch.stages")
