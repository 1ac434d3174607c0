"""helpdesk.events: the catalogue, subscribers, the payload shape, the outbox sweep."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string

from conftest import inbound_message
from helpdesk import events
from tickets import inbound
from tickets.models import TicketEvent
from tickets.tasks import republish_unpublished_events

pytestmark = pytest.mark.django_db


def test_every_subscriber_is_a_registered_task_for_a_catalogued_event():
    from helpdesk.celery import app

    for name, task_paths in events.SUBSCRIBERS.items():
        assert name in events.CATALOGUE
        for path in task_paths:
            assert callable(import_string(path))
            assert path in app.tasks


def test_event_payload_is_ids_only_and_survives_a_json_round_trip(captured_events):
    received = inbound.receive(inbound_message())

    payloads = captured_events.published
    assert json.loads(json.dumps(payloads)) == payloads
    received_event = payloads[-1]
    assert received_event["name"] == events.MESSAGE_RECEIVED
    assert received_event["ticket_id"] == received.ticket.pk
    assert received_event["message_id"] == received.message.pk
    assert set(received_event) == {"id", "name", "ticket_id", "message_id", "actor_id", "occurred_at"}


def test_subscribers_get_one_batch_per_transaction_and_events_are_marked_published(captured_events):
    inbound.receive(inbound_message())

    assert sorted((path, [e["name"] for e in batch]) for path, batch in captured_events.sent) == [
        (events.PUSH_LIVE, [events.TICKET_CREATED, events.MESSAGE_RECEIVED]),
        ("tickets.tasks.record_customer_contact", [events.MESSAGE_RECEIVED]),
    ]
    assert not TicketEvent.objects.filter(published_at=None).exists()


def test_events_stay_unpublished_when_the_broker_is_down(captured_events, monkeypatch):
    def broker_down(path, batch):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(events, "send_to_subscriber", broker_down)
    inbound.receive(inbound_message())

    assert captured_events.names == [events.TICKET_CREATED, events.MESSAGE_RECEIVED]
    assert TicketEvent.objects.filter(published_at=None).count() == 2


def test_unknown_event_names_are_refused():
    with pytest.raises(ValueError, match="catalogue"):
        events.publish_on_commit(
            [TicketEvent(ticket_id=1, name="ticket.exploded", created_at=timezone.now())]
        )


def test_republish_sweep_sends_events_a_dead_process_left_behind(captured_events, monkeypatch):
    # A process killed between commit and publish: rows written, never sent.
    with monkeypatch.context() as patch:
        patch.setattr(events, "publish_on_commit", lambda new_events: None)
        received = inbound.receive(inbound_message())
    TicketEvent.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert captured_events.sent == []

    republished = republish_unpublished_events()

    assert republished == 2
    sent = dict(captured_events.sent)
    assert set(sent) == {"tickets.tasks.record_customer_contact", events.PUSH_LIVE}
    assert sent["tickets.tasks.record_customer_contact"][0]["message_id"] == received.message.pk
    assert not TicketEvent.objects.filter(published_at=None).exists()
    assert republish_unpublished_events() == 0


def test_republish_leaves_fresh_events_to_their_own_publisher(monkeypatch):
    monkeypatch.setattr(events, "publish_on_commit", lambda new_events: None)
    inbound.receive(inbound_message())

    assert republish_unpublished_events() == 0


@pytest.mark.django_db(transaction=True)
def test_events_committed_close_together_are_published_as_one_batch(captured_events, settings):
    settings.EVENTS_PUBLISH_DELAY = 0.2
    first = inbound.receive(inbound_message())
    second = inbound.receive(inbound_message(new_conversation=True))

    deadline = time.monotonic() + 10
    while TicketEvent.objects.filter(published_at=None).exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not TicketEvent.objects.filter(published_at=None).exists()
    contact_batches = [batch for path, batch in captured_events.sent if path != events.PUSH_LIVE]
    assert [[e["message_id"] for e in batch] for batch in contact_batches] == [
        [first.message.pk, second.message.pk]
    ]
