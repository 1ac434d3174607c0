"""helpdesk.events: the catalogue, subscribers, the payload shape, the outbox sweeps."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string

from conftest import inbound_message
from helpdesk import events
from tickets import inbound
from tickets.models import Customer, SubscriberBatch, TicketEvent
from tickets.tasks import republish_unpublished_events, resend_stranded_subscriber_batches

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
    assert not SubscriberBatch.objects.exists()  # the republished events get batches of their own


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


# Each subscriber's batch is tracked until its task has run; the sweep resends the ones left behind.

CONTACT = "tickets.tasks.record_customer_contact"


def run_subscriber(task_path: str, batch: list[dict]) -> None:
    """What a worker does with a batch it was sent: run the subscriber's task with the batch's id."""
    row = SubscriberBatch.objects.get(subscriber=task_path, event_ids=[event["id"] for event in batch])
    import_string(task_path)(batch, batch_id=row.pk)


def make_due(**filters) -> None:
    SubscriberBatch.objects.filter(**filters).update(resend_at=timezone.now() - timedelta(seconds=1))


def test_each_subscribers_batch_is_tracked_until_its_task_has_run(captured_events):
    received = inbound.receive(inbound_message())
    sent = dict(captured_events.sent)

    tracked = dict(SubscriberBatch.objects.values_list("subscriber", "event_ids"))
    assert tracked == {path: [event["id"] for event in batch] for path, batch in sent.items()}
    assert not TicketEvent.objects.filter(published_at=None).exists()  # sent, but not yet done

    run_subscriber(CONTACT, sent[CONTACT])

    assert Customer.objects.get(pk=received.ticket.customer_id).last_contact_at is not None
    assert list(SubscriberBatch.objects.values_list("subscriber", flat=True)) == [events.PUSH_LIVE]


def test_every_subscriber_task_marks_its_batch_done(captured_events, celery_queue, alice):
    from tickets import replies

    received = inbound.receive(inbound_message())
    replies.send_reply(received.ticket, actor=alice, text="Счёт отправлен повторно.")
    subscribers = {path for paths in events.SUBSCRIBERS.values() for path in paths}
    assert {path for path, _batch in captured_events.sent} == subscribers

    for path, batch in captured_events.sent:
        run_subscriber(path, batch)

    assert not SubscriberBatch.objects.exists()


def test_a_batch_the_broker_lost_is_sent_again_to_that_subscriber_only(captured_events, settings):
    received = inbound.receive(inbound_message())
    sent = dict(captured_events.sent)
    run_subscriber(events.PUSH_LIVE, sent[events.PUSH_LIVE])
    # The contact batch never reached a worker (Redis restarted without it, or its task failed for good).
    assert resend_stranded_subscriber_batches() == 0
    make_due(subscriber=CONTACT)

    assert resend_stranded_subscriber_batches() == 1

    assert captured_events.sent[-1] == (CONTACT, sent[CONTACT])
    run_subscriber(CONTACT, sent[CONTACT])
    assert Customer.objects.get(pk=received.ticket.customer_id).last_contact_at is not None
    assert not SubscriberBatch.objects.exists()
    make_due()
    assert resend_stranded_subscriber_batches() == 0


def test_a_batch_that_is_never_done_is_sent_again_less_and_less_often(captured_events, settings):
    settings.EVENTS_RESEND_AFTER = 60
    inbound.receive(inbound_message())
    assert len(captured_events.sent) == 2
    waits = []
    for _ in range(7):
        make_due(subscriber=CONTACT)
        resend_stranded_subscriber_batches()
        batch = SubscriberBatch.objects.get(subscriber=CONTACT)
        waits.append(round((batch.resend_at - timezone.now()).total_seconds() / 60))

    assert waits == [2, 4, 8, 16, 32, 32, 32]
    assert batch.sends == 8


def test_a_batch_resent_while_the_broker_is_down_is_due_again_at_once(captured_events, monkeypatch):
    inbound.receive(inbound_message())
    assert len(captured_events.sent) == 2
    make_due()

    def broker_down(path, batch, batch_id):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(events, "send_to_subscriber", broker_down)

    assert resend_stranded_subscriber_batches() == 0
    assert SubscriberBatch.objects.count() == 2
    assert not SubscriberBatch.objects.filter(resend_at__gt=timezone.now()).exists()


def test_a_batch_whose_events_are_gone_is_dropped_by_the_sweep(captured_events):
    received = inbound.receive(inbound_message())
    assert len(captured_events.sent) == SubscriberBatch.objects.count() == 2
    make_due()
    received.ticket.delete()

    assert resend_stranded_subscriber_batches() == 0

    assert not SubscriberBatch.objects.exists()


def test_a_batch_for_a_subscriber_no_longer_listed_is_dropped_by_the_sweep(captured_events, monkeypatch):
    inbound.receive(inbound_message())
    assert len(captured_events.sent) == SubscriberBatch.objects.count() == 2
    monkeypatch.setitem(events.SUBSCRIBERS, events.MESSAGE_RECEIVED, (events.PUSH_LIVE,))
    make_due()

    assert resend_stranded_subscriber_batches() == 1

    assert list(SubscriberBatch.objects.values_list("subscriber", flat=True)) == [events.PUSH_LIVE]
