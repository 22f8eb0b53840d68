"""A registry of plugin factories by name (engines, analyzers, crop stages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Registry(dict[str, F]):
    """Factories by name; registering a name twice is an error.

    >>> plugins: Registry = Registry("plugin")
    >>> @plugins.register("echo")
    ... def echo(x): return x
    >>> plugins.names(), plugins["echo"](1)
    (['echo'], 1)
    """

    def __init__(self, what: str, error: type[Exception] = ValueError) -> None:
        super().__init__()
        self.what = what
        self.error = error

    def register(self, name: str) -> Callable[[F], F]:
        def decorator(factory: F) -> F:
            if name in self:
                raise self.error(f"{self.what} {name!r} registered twice")
            self[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self)
