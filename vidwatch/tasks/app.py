"""The Celery application: built from a configuration, never at import time."""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from vidwatch.config import Config

QUEUES = ("gpu", "cpu", "summary")
ANALYZE_TASK = {"gpu": "vidwatch.gpu.analyze_video", "cpu": "vidwatch.cpu.analyze_video"}

# RabbitMQ cancels a consumer whose delivery stays unacknowledged past consumer_timeout
# (30 min by default); a task must end, or be killed, well before that.
TASK_TIME_LIMIT_S = 25 * 60
TASK_SOFT_TIME_LIMIT_S = 24 * 60


def make_app(config: Config) -> Celery:
    """A Celery app on the configured broker, with our queues, routes and delivery guarantees."""
    app = Celery("vidwatch", broker=config.broker.url.get_secret_value(), set_as_current=False)
    exchange = Exchange("vidwatch", type="direct", durable=True)
    app.conf.update(
        task_queues=[Queue(name, exchange, routing_key=name, durable=True) for name in QUEUES],
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
        task_time_limit=TASK_TIME_LIMIT_S,
        task_soft_time_limit=TASK_SOFT_TIME_LIMIT_S,
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
    return app
