"""A real Celery worker on the real Redis broker: inbound message → ticket → domain event → task."""

import subprocess
import time
from collections.abc import Callable

import pytest

from conftest import inbound_message
from tickets import inbound, replies
from tickets.models import Customer, DeliveryStatus, Message, TicketEvent

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
