"""The Celery application: built from a configuration, never at import time."""

from __future__ import annotations

from typing import ClassVar

from celery import Celery
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Exchange, Queue

from vidwatch.config import Config

QUEUES = ("gpu", "cpu", "summary")
ANALYZE_TASK = {"gpu": "vidwatch.gpu.analyze_video", "cpu": "vidwatch.cpu.analyze_video"}
SEGMENT_TASK = {"gpu": "vidwatch.gpu.analyze_segment", "cpu": "vidwatch.cpu.analyze_segment"}
SUMMARY_TASK = "vidwatch.summary.summarize"
DEAD_EXCHANGE = "vidwatch.dead"
DEAD_QUEUE = "dead"


def task_id(video_id: str, unit: str = "analyze") -> str:
    """The message id of one unit of work on one video version: ``analyze``, ``seg<k>`` or ``summary``.

    Deterministic, so a republished or redelivered message carries the same id (and the same
    delivery count).

    >>> task_id("4f2a", "seg3")
    '4f2a.seg3'
    """
    return f"{video_id}.{unit}"


def dead_letter_queue(config: Config | None = None) -> Queue:
    """Where poison messages end (rejected without requeue), for a person to look at.

    A quorum queue too when ``[broker] quorum_queues`` is on: a classic ``dead`` queue would live
    on one node of the cluster, and the poison messages with it.
    """
    arguments = {"x-queue-type": "quorum"} if config is not None and config.broker.quorum_queues else None
    return Queue(DEAD_QUEUE, Exchange(DEAD_EXCHANGE, type="fanout", durable=True), routing_key="#", durable=True,
                 queue_arguments=arguments)


def queue_arguments(config: Config) -> dict[str, object]:
    """Dead-lettering always; quorum queues on request.

    A quorum queue counts redeliveries itself: past ``x-delivery-limit`` the broker dead-letters the
    message, even when the worker that should count it (Redis, ``[worker] max_deliveries``) cannot.
    The broker's limit is one above vidwatch's, so the worker fails the video first and the broker's
    limit is the backstop.

    >>> from vidwatch.config import Config
    >>> queue_arguments(Config.model_validate({"broker": {"quorum_queues": True}}))
    {'x-dead-letter-exchange': 'vidwatch.dead', 'x-queue-type': 'quorum', 'x-delivery-limit': 4}
    """
    arguments: dict[str, object] = {"x-dead-letter-exchange": DEAD_EXCHANGE}
    if config.broker.quorum_queues:
        arguments["x-queue-type"] = "quorum"
        arguments["x-delivery-limit"] = config.worker.max_deliveries + 1
    return arguments


def retries_in_task(config: Config) -> bool:
    """Whether a transient failure is retried inside the running task rather than by a delayed message.

    Celery's ``retry(countdown=…)`` publishes a message with an ETA, which the worker holds,
    unacknowledged, until it is due; with quorum queues Celery turns that into its "native delayed
    delivery" instead, which binds only topic exchanges: on vidwatch's direct exchange a countdown
    retry would not be delayed at all. With quorum queues the task therefore waits out its backoff
    and runs its (idempotent) body again within the same delivery
    (:func:`vidwatch.tasks.policy.run_task`).
    """
    return config.broker.quorum_queues


class QuorumConsumer(CeleryConsumer):
    """Celery's consumer without its native-delayed-delivery step (used with ``quorum_queues``).

    That step declares 28 delay queues and, on every (re)connection, tries each broker URL of a
    multi-URL broker in turn, three times, before the worker consumes again (15 s per stopped
    node); vidwatch never delays a message (:func:`retries_in_task`), so it has nothing to set up.
    """

    class Blueprint(CeleryConsumer.Blueprint):
        default_steps: ClassVar[list[str]] = [
            step for step in CeleryConsumer.Blueprint.default_steps if not step.endswith(":DelayedDelivery")
        ]


def soft_limit(hard_s: float) -> float:
    """The soft limit under a hard one: 30 s (a tenth of a short limit) to record the failure.

    >>> soft_limit(1500.0), soft_limit(3.0)
    (1470.0, 2.7)
    """
    return hard_s - min(30.0, hard_s / 10)


def time_limits(config: Config, media_s: float) -> tuple[float, float]:
    """(soft, hard) limits for analysing ``media_s`` seconds of video, under the configured cap.

    RabbitMQ closes the channel of a consumer whose delivery stays unacknowledged past
    consumer_timeout (30 min by default): a task must end, or be killed, well before that.
    """
    hard = min(config.worker.task_time_limit_seconds, 120.0 + 4.0 * media_s)
    return soft_limit(hard), hard


def make_app(config: Config) -> Celery:
    """A Celery app on the configured broker, with our queues, routes and delivery guarantees."""
    app = Celery("vidwatch", broker=config.broker.url.get_secret_value(), set_as_current=False)
    exchange = Exchange("vidwatch", type="direct", durable=True)
    app.conf.update(
        task_queues=[
            Queue(name, exchange, routing_key=name, durable=True, queue_arguments=queue_arguments(config))
            for name in QUEUES
        ],
        task_default_queue="cpu",
        task_default_exchange="vidwatch",
        task_default_routing_key="cpu",
        task_routes={f"vidwatch.{name}.*": {"queue": name, "routing_key": name} for name in QUEUES},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_time_limit=config.worker.task_time_limit_seconds,
        task_soft_time_limit=soft_limit(config.worker.task_time_limit_seconds),
        task_publish_retry=False,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=30,
        broker_transport_options={"confirm_publish": True},
    )
    if config.broker.quorum_queues:
        app.conf.worker_consumer = f"{__name__}:QuorumConsumer"
    return app
