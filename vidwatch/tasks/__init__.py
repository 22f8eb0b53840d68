"""Celery app, task routes, and the analysis tasks."""

from vidwatch.tasks.app import QUEUES, make_app

__all__ = ["QUEUES", "make_app"]
