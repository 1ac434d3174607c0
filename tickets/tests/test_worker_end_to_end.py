"""A real Celery worker on the real Redis broker: inbound message → ticket → domain event → task."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection

from conftest import inbound_message
from helpdesk.celery import app
from tickets import inbound, replies
from tickets.models import Customer, DeliveryStatus, Message, TicketEvent

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """DATABASE_URL (TCP or the embedded server's socket) pointed at this run's test database."""
    configured = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/helpdesk"))
    return urlunsplit(configured._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture
def celery_worker() -> Iterator[subprocess.Popen]:
    """A worker process of our app consuming a queue of its own, so parallel runs never share tasks."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings_test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_QUEUE": queue,
        "DELIVER_TO_LOG": "true",
    }
    command = [sys.executable, "-m", "celery", "-A", "helpdesk", "worker", "-Q", queue, "--pool", "solo"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info"]
    worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield worker
    app.conf.task_default_queue = default_queue
    worker.terminate()
    output, _ = worker.communicate(timeout=30)
    redis.Redis.from_url(settings.REDIS_URL).delete(queue)
    print(output.decode(errors="replace")[-5000:])


def wait_for(condition: Callable[[], bool], worker: subprocess.Popen, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        assert worker.poll() is None, "the worker died"
        time.sleep(0.2)
    pytest.fail("the worker did not do the work in time")


def test_inbound_message_becomes_a_ticket_whose_event_a_worker_task_consumes(celery_worker):
    received = inbound.receive(inbound_message(sender_address="e2e@customer.test"))
    customer = received.ticket.customer
    assert Customer.objects.get(pk=customer.pk).last_contact_at is None

    # record_customer_contact (the message.received subscriber) runs in the worker process.
    wait_for(lambda: Customer.objects.get(pk=customer.pk).last_contact_at is not None, celery_worker)

    events = TicketEvent.objects.filter(ticket=received.ticket)
    assert {event.name for event in events} == {"ticket.created", "message.received"}
    assert all(event.published_at is not None for event in events)


def test_agent_reply_is_delivered_by_the_worker_through_the_channel_adapter(celery_worker, alice):
    received = inbound.receive(inbound_message(sender_address="reply-e2e@customer.test"))

    reply = replies.send_reply(received.ticket, actor=alice, text="Счёт отправлен повторно.")

    wait_for(
        lambda: Message.objects.get(pk=reply.pk).delivery_status == DeliveryStatus.SENT,
        celery_worker,
    )
    delivered = Message.objects.get(pk=reply.pk)
    assert delivered.external_id == f"log-{reply.pk}"
    assert delivered.delivery_attempts.get().succeeded
