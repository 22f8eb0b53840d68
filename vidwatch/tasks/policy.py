"""The one error policy of the worker's tasks: retry, fail, dead-letter, or hand back.

:func:`decide` says what an exception means; :func:`run_task` applies it to a task body:

| raised by the body | verdict | what happens |
|---|---|---|
| :class:`Cancelled` (connection lost) | ``CANCEL`` | re-raised: the unacknowledged message returns to the queue |
| :class:`Poison` (delivered too often) | ``POISON`` | the video was failed; the message is dead-lettered |
| a retryable error (``is_retryable``) | ``RETRY`` | retried with backoff; after ``MAX_RETRIES`` the video fails |
| soft time limit, vidwatch error, other | ``FAIL`` | the video fails (once): ``<stage>: <path>: <why>`` |

A retry is a delayed message (Celery's countdown); with quorum queues, which cannot delay a
message on vidwatch's direct exchange, the task waits out the backoff and runs the body again
(:func:`~vidwatch.tasks.app.retries_in_task`).

Redis errors raised by a body are translated at this boundary
(:func:`~vidwatch.results.connection.redis_errors`): unreachable Redis is
:class:`~vidwatch.errors.ResultsUnavailable` (retryable), a refused command a permanent
:class:`~vidwatch.errors.ResultsError`. A failure is stored with its stage and kind
(:meth:`~vidwatch.results.records.Records.fail`), not only as text.

Every task also counts its deliveries (:func:`count_delivery`): past ``[worker]
max_deliveries`` the video fails and the message goes to the dead-letter queue instead
of looping.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from celery import Task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from vidwatch.errors import Cancelled, Poison, VidwatchError, failure_kind, is_retryable
from vidwatch.results.connection import redis_errors
from vidwatch.tasks.app import retries_in_task, task_id
from vidwatch.tasks.resources import WorkerContext
from vidwatch.tasks.threadpool import RUNNING

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
DELIVERY_COUNT_TTL_S = 7 * 24 * 3600

Check = Callable[[], None] | None  # called once per analysed frame; raises to stop the task


class Verdict(enum.Enum):
    CANCEL = "cancel"
    POISON = "poison"
    RETRY = "retry"
    FAIL = "fail"


@dataclass
class Job:
    """What a failure message names: the video, the stage (``analyze`` or ``summary``) and the file.

    ``path`` is filled in once the task has read the video's record.
    """

    video_id: str
    stage: str
    path: str = ""


def decide(exc: BaseException) -> Verdict:
    """What the policy does with ``exc`` (see the module's table).

    >>> from vidwatch.errors import ResultsUnavailable
    >>> decide(ResultsUnavailable("redis: down")), decide(ValueError("bug"))
    (<Verdict.RETRY: 'retry'>, <Verdict.FAIL: 'fail'>)
    """
    if isinstance(exc, Cancelled):
        return Verdict.CANCEL
    if isinstance(exc, Poison):
        return Verdict.POISON
    if is_retryable(exc):
        return Verdict.RETRY
    return Verdict.FAIL


def failure_reason(job: Job, exc: BaseException) -> str:
    """The video's error text for a failure: ``<stage>: <path>: <why>``.

    >>> failure_reason(Job("v1", "summary", "/in/a.mp4"), SoftTimeLimitExceeded())
    'summary: /in/a.mp4: time limit exceeded'
    """
    if isinstance(exc, SoftTimeLimitExceeded):
        why = "time limit exceeded"
    elif isinstance(exc, VidwatchError):
        why = str(exc)
    else:
        why = f"internal error: {exc!r}"
    return f"{job.stage}: {job.path}: {why}"


def backoff_s(retries: int) -> float:
    """Wait before retry number ``retries + 1``: 1, 2, 4 … s, at most a minute.

    >>> [backoff_s(n) for n in range(7)]
    [1, 2, 4, 8, 16, 32, 60]
    """
    return min(60, 2**retries)


def _attempts(context: WorkerContext, job: Job, body: Callable[[], str]) -> str:
    """``body``, retried in this delivery after a transient error when the broker cannot delay a retry."""
    retries = MAX_RETRIES if retries_in_task(context.config) else 0
    attempt = 0
    while True:
        try:
            with redis_errors():
                return body()
        except Exception as exc:
            if attempt == retries or decide(exc) is not Verdict.RETRY:
                raise
            logger.warning("%s video=%s: %s; retry %d/%d in %d s", job.stage, job.video_id, exc, attempt + 1,
                           retries, backoff_s(attempt))
            time.sleep(backoff_s(attempt))
            attempt += 1


def run_task(task: Task, context: WorkerContext, job: Job, body: Callable[[], str]) -> str:
    """Run ``body`` under the policy: its result, or ``"failed"`` when the policy failed the video."""
    try:
        try:
            return _attempts(context, job, body)
        except Exception as exc:
            if decide(exc) is not Verdict.FAIL:
                raise
            if not isinstance(exc, SoftTimeLimitExceeded | VidwatchError):
                logger.exception("%s video=%s path=%s: unexpected error", job.stage, job.video_id, job.path)
            with redis_errors():  # Redis down while failing the video: retried below
                context.fail(job.video_id, failure_reason(job, exc), path=job.path, stage=job.stage,
                             kind="timeout" if isinstance(exc, SoftTimeLimitExceeded) else failure_kind(exc))
            return "failed"
    except Exception as exc:
        _escalate(task, context, job, exc)  # dead-letters or retries by raising; else re-raised as it is
        raise


def _escalate(task: Task, context: WorkerContext, job: Job, exc: Exception) -> None:
    """Dead-letter the message (poison) or retry it (transient); a cancellation just goes up."""
    verdict = decide(exc)
    if verdict is Verdict.CANCEL:
        logger.warning("task %s: cancelled; its message returns to the queue", task.request.id)
    elif verdict is Verdict.POISON:
        logger.error("%s; dead-lettered", exc)
        raise Reject(str(exc), requeue=False) from exc
    elif verdict is Verdict.RETRY:
        retries = MAX_RETRIES if retries_in_task(context.config) else task.request.retries  # in-task: spent
        if retries < MAX_RETRIES:
            raise task.retry(exc=exc, countdown=backoff_s(retries)) from exc
        logger.error("%s video=%s: %s; giving up after %d retries", job.stage, job.video_id, exc, MAX_RETRIES)
        context.fail(job.video_id, f"{job.stage}: {job.path}: {exc} (unreachable after {MAX_RETRIES} retries)",
                     path=job.path, stage=job.stage, kind=failure_kind(exc))


def count_delivery(context: WorkerContext, job: Job, unit: str, run: str) -> None:
    """Raise :class:`Poison` (after failing the video) when this message keeps coming back.

    Counted per ``run`` (the record's) and unit of work (``analyze``, ``seg<k>``, ``summary``):
    ``submit --force`` sends the same task ids again, in a new run.
    """
    client = context.client
    key = context.keys.deliveries(f"{task_id(job.video_id, unit)}.r{run}")
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, DELIVERY_COUNT_TTL_S)
    deliveries = int(pipe.execute()[0])
    limit = context.config.worker.max_deliveries
    if deliveries > limit:
        reason = (f"{job.stage}: {job.path}: poison message: {unit} delivered {deliveries} times "
                  f"(max_deliveries {limit})")
        poison = Poison(reason)
        context.records.fail(job.video_id, reason, path=job.path, stage=job.stage, kind=failure_kind(poison))
        raise poison


def limits_check(task: Task, context: WorkerContext, video_id: str) -> Check:
    """In the thread pool: the per-frame check of this task's limits, and what its hard limit does."""
    limits = RUNNING.get(task.request.id) if context.threaded else None
    if limits is None:
        return None
    limits.on_hard = lambda: context.fail_hard_limit(video_id, task.request.id)
    return limits.check
