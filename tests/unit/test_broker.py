"""The broker at vidwatch's boundary: its errors become PublishError, and "does it answer" never raises."""

from __future__ import annotations

import socket

import pytest
from amqp.exceptions import ConnectionForced, MessageNacked
from kombu.exceptions import OperationalError

from vidwatch.broker import broker_answers, broker_check, broker_errors
from vidwatch.errors import PublishError, is_retryable

TRANSLATED = [  # what the broker (through kombu/py-amqp) raised, the message vidwatch reports
    (ConnectionRefusedError(111, "Connection refused"),
     "publish: v1: broker did not answer: [Errno 111] Connection refused"),
    (OperationalError("socket closed"), "publish: v1: broker did not answer: socket closed"),
    (ConnectionForced("shutdown"), "publish: v1: broker did not answer: "),
    (TimeoutError("timed out"), "publish: v1: broker did not answer: timed out"),
    (MessageNacked(), "publish: v1: the broker refused the message (nack)"),
]


@pytest.mark.parametrize(("raised", "message"), TRANSLATED)
def test_broker_errors_become_retryable_publish_errors(raised: Exception, message: str) -> None:
    with pytest.raises(PublishError) as caught, broker_errors("publish: v1"):
        raise raised
    assert str(caught.value).startswith(message)
    assert caught.value.__cause__ is raised and is_retryable(caught.value)


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), broker_errors("publish: v1"):
        raise KeyError("x")


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_broker_that_does_not_answer_is_reported_not_raised() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{_closed_port()}//"
    answers, why = broker_check(url, timeout_s=1.0)
    assert not answers and why.startswith("unreachable: ")
    assert broker_answers(url, timeout_s=1.0) is False
