"""The Celery app of the worker and beat processes (settings: CELERY_* in helpdesk/settings.py)."""

import os

import kombu.exceptions
import redis.exceptions
from celery import Celery, Task
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

# PostgreSQL restarting or failing over (a lost or refused connection, a cancelled statement, a deadlock),
# the broker or the channel layer's Redis out of reach: all pass within seconds, so the task tries again.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class RecoverableTask(Task):
    """Every task of ours: on a transient error, tried again up to ten times with exponential backoff (full
    jitter, at most a minute apart), which outlasts a database restart. Tasks are idempotent, so a retry after
    a partial run is harmless; what still fails is left to the sweeps (beat)."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 10


app = Celery("helpdesk", task_cls=RecoverableTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
