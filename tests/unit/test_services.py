"""Settings of a private RabbitMQ node, written as its advanced.config."""

import re

import pytest

from vidwatch.services import advanced_config


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"consumer_timeout": 5000}, "[{rabbit, [{consumer_timeout, 5000}]}].\n"),
        ({"collect_statistics_interval": 500, "background_gc_enabled": True},
         "[{rabbit, [{collect_statistics_interval, 500}, {background_gc_enabled, true}]}].\n"),
        ({"Consumer_timeout": 1}, ValueError("expected a lower-case Erlang atom, got 'Consumer_timeout'")),
        ({"consumer_timeout": "5000"}, ValueError("expected an int or a bool, got '5000'")),
        ({"consumer_timeout": 5.0}, ValueError("expected an int or a bool, got 5.0")),
    ],
)
def test_private_broker_settings(settings: dict, expected: str | Exception) -> None:
    if isinstance(expected, Exception):
        with pytest.raises(type(expected), match=re.escape(str(expected))):
            advanced_config(settings)
    else:
        assert advanced_config(settings) == expected
