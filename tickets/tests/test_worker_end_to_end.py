"""A real Celery worker on the real Redis broker: inbound message → ticket → domain event → task."""

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction

from conftest import celery_worker_process, inbound_message
from tickets import inbound, replies
from tickets.models import Customer, DeliveryStatus, Message, SubscriberBatch, TicketEvent

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


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


# Stranded work: a worker killed, or its database connection lost, in the middle of a subscriber's task.

CONTACT = "tickets.tasks.record_customer_contact"


@contextlib.contextmanager
def messages_locked() -> Iterator[None]:
    """Hold every read of messages: record_customer_contact waits at its first query, before any write."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE tickets_message IN ACCESS EXCLUSIVE MODE")
        yield


def backend_waiting_on_the_lock(application_name: str, worker: subprocess.Popen) -> int:
    """The process id of the worker's PostgreSQL backend once it waits on the messages lock."""
    found: list[int] = []

    def waiting() -> bool:
        with connection.cursor() as cursor:
            # Inside a transaction PostgreSQL would show the same snapshot of pg_stat_activity every time.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"
                " AND query LIKE %s",
                [application_name, "%tickets_message%"],
            )
            found.extend(pid for (pid,) in cursor.fetchall())
        return bool(found)

    wait_for(waiting, worker, seconds=30)
    return found[0]


def contact_recorded(customer: Customer) -> bool:
    """The contact batch's effect is applied and its batch is done (no longer tracked)."""
    return (
        Customer.objects.get(pk=customer.pk).last_contact_at is not None
        and not SubscriberBatch.objects.filter(subscriber=CONTACT).exists()
    )


def test_a_batch_whose_worker_was_killed_mid_task_is_done_by_the_next_worker(celery_queue):
    received = inbound.receive(inbound_message(sender_address="killed@customer.test"))
    name = f"worker-{celery_queue}"
    with messages_locked(), celery_worker_process(celery_queue, DATABASE_APPLICATION_NAME=name) as worker:
        backend_waiting_on_the_lock(name, worker)
        worker.kill()  # SIGKILL: the batch stays unacknowledged in Redis
        worker.wait()

    # The next worker, with a short visibility timeout (production: twice the longest task), takes it back.
    with celery_worker_process(celery_queue, CELERY_VISIBILITY_TIMEOUT="1") as worker:
        wait_for(lambda: contact_recorded(received.ticket.customer), worker, seconds=15)


def test_a_subscriber_that_loses_its_database_connection_tries_again_and_succeeds(celery_queue):
    received = inbound.receive(inbound_message(sender_address="reconnect@customer.test"))
    name = f"worker-{celery_queue}"
    with celery_worker_process(celery_queue, DATABASE_APPLICATION_NAME=name) as worker:
        with messages_locked(), connection.cursor() as cursor:
            # What a PostgreSQL restart does to the worker's connection, in the middle of the task.
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend_waiting_on_the_lock(name, worker)])

        wait_for(lambda: contact_recorded(received.ticket.customer), worker, seconds=15)
        assert worker.poll() is None
