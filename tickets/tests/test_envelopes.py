"""Inbound envelopes: what strangers send is cleaned and kept; failed ones retry with backoff, then wait."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import api_channel_message, inbound_message
from helpdesk.health import check_envelopes, run_check
from tickets import inbound, tasks
from tickets.models import Channel, EnvelopeStatus, InboundEnvelope, Message, Ticket

pytestmark = pytest.mark.django_db

INBOUND = "/api/v1/inbound/messages/"


def post_raw(client, body: bytes):
    return client.post(INBOUND, body, content_type="application/json")


def stored_message(response) -> Message:
    assert response.status_code == 202, response.content
    assert response.json()["status"] == EnvelopeStatus.PROCESSED
    return Message.objects.select_related("ticket__customer").get(pk=response.json()["message"])


# --- item 4: poison fields become stored messages ---

ATTACHMENT = {"filename": "invoice.pdf", "content_type": "application/pdf", "content_base64": "JVBERg=="}


@pytest.mark.parametrize(
    ("overrides", "stored"),
    [
        ({"text": "Hello\x00world"}, lambda m: m.body_text == "Hello\ufffdworld"),
        ({"thread_key": "order\x002001"}, lambda m: m.ticket.thread_key == "order\ufffd2001"),
        ({"in_reply_to": ["crm-1\x00"]}, lambda m: m.ticket.thread_key == "order-1009"),
        ({"html": "<p>Hi \ud800 there</p>", "text": ""}, lambda m: m.body_text == "Hi \ufffd there"),
        ({"subject": "Refund\x00"}, lambda m: m.ticket.subject == "Refund\ufffd"),
        (
            {"customer": {"id": "crm-customer-42", "name": "Ol\x00ga"}},
            lambda m: m.ticket.customer.name == "Ol\ufffdga",
        ),
        (
            {"customer": {"id": "crm-customer-42", "locale": "r\x00"}},
            lambda m: m.ticket.customer.locale == "r\ufffd",
        ),
        (
            {"attachments": [{**ATTACHMENT, "filename": "in\x00voice.pdf"}]},
            lambda m: m.attachments.get().filename == "in\ufffdvoice.pdf",
        ),
        (
            {"attachments": [{**ATTACHMENT, "content_type": "application/pdf\x00"}]},
            lambda m: m.attachments.get().content_type == "application/pdf\ufffd",
        ),
        (
            {"attachments": [{**ATTACHMENT, "content_id": "<logo\x00@mail>"}]},
            lambda m: m.attachments.get().content_id == "logo\ufffd@mail",
        ),
    ],
)
def test_a_customer_message_the_database_cannot_store_as_sent_is_cleaned_and_kept(
    api_client, dave, overrides, stored
):
    raw = json.dumps(api_channel_message(**overrides)).encode()

    message = stored_message(post_raw(api_client(dave), raw))

    assert stored(message)
    envelope = InboundEnvelope.objects.get()
    assert bytes(envelope.payload) == raw, "the original bytes stay in the envelope"
    assert envelope.attempts == 1


@pytest.mark.parametrize("external_id", ["crm\x005001", "crm\ud8005001"])
def test_an_id_the_database_cannot_store_is_kept_hashed_and_stays_idempotent(api_client, dave, external_id):
    raw = json.dumps(api_channel_message(id=external_id)).encode()

    first = stored_message(post_raw(api_client(dave), raw))
    again = stored_message(post_raw(api_client(dave), raw))
    other = stored_message(
        post_raw(api_client(dave), json.dumps(api_channel_message(id="crm\ufffd5001")).encode())
    )

    assert again.pk == first.pk
    assert first.external_id.startswith("sha256:")
    assert other.pk != first.pk, "a different id never becomes the same message"
    assert InboundEnvelope.objects.count() == 2


def test_a_reply_to_an_id_with_nul_threads_into_that_messages_ticket(api_client, dave):
    first = stored_message(
        post_raw(api_client(dave), json.dumps(api_channel_message(id="crm\x001")).encode())
    )
    reply = api_channel_message(id="crm-2", thread_key="", in_reply_to=["crm\x001"], text="Any news?")

    second = stored_message(post_raw(api_client(dave), json.dumps(reply).encode()))

    assert second.ticket_id == first.ticket_id


def test_a_5000_digit_number_anywhere_in_the_payload_is_a_400_and_nothing_is_stored(api_client, dave):
    raw = json.dumps(api_channel_message())[:-1].encode() + b', "order": ' + b"9" * 5000 + b"}"

    response = post_raw(api_client(dave), raw)

    assert response.status_code == 400
    assert "not JSON" in response.json()["detail"]
    assert InboundEnvelope.objects.count() == 0 and Ticket.objects.count() == 0


def test_nul_in_channel_data_and_envelope_source_is_stored_cleaned():
    envelope, _ = inbound.store_envelope(Channel.API, "crm-9", b"{}", source={"mailbox\x00": "in\x00box"})
    received = inbound.receive(inbound_message(channel_data={"to": ["support\x00@shop.test"]}))

    envelope.refresh_from_db()
    assert envelope.source == {"mailbox\ufffd": "in\ufffdbox"}
    received.message.refresh_from_db()
    assert received.message.channel_data["to"] == ["support\ufffd@shop.test"]


# --- item 4: failed envelopes retry with backoff, then stay failed ---


def failed_envelope(external_id: str = "bad-1") -> InboundEnvelope:
    envelope, _ = inbound.store_envelope(Channel.API, external_id, b"{not json")
    return inbound.process_envelope(envelope)


def assert_next_try_after(envelope: InboundEnvelope, wait: timedelta, *, tried_between) -> None:
    envelope.refresh_from_db()
    earliest, latest = tried_between
    assert earliest + wait <= envelope.next_attempt_at <= latest + wait


def test_a_failed_envelope_is_retried_after_1_5_and_30_minutes_then_every_6_hours_then_stays_failed():
    before = timezone.now()
    envelope = failed_envelope()
    assert_next_try_after(envelope, timedelta(minutes=1), tried_between=(before, timezone.now()))
    waits = [timedelta(minutes=5), timedelta(minutes=30), *[timedelta(hours=6)] * 4]

    for attempt, wait in enumerate(waits, start=2):
        assert inbound.retry_due_envelopes(now=envelope.next_attempt_at - timedelta(seconds=1)) == []
        before = timezone.now()
        (retried,) = inbound.retry_due_envelopes(now=envelope.next_attempt_at)
        assert retried.pk == envelope.pk and retried.status == EnvelopeStatus.FAILED
        assert_next_try_after(envelope, wait, tried_between=(before, timezone.now()))
        assert envelope.attempts == attempt

    (last,) = inbound.retry_due_envelopes(now=envelope.next_attempt_at)
    envelope.refresh_from_db()
    assert envelope.attempts == len(waits) + 2 == 8
    assert envelope.status == EnvelopeStatus.FAILED and envelope.next_attempt_at is None
    assert inbound.retry_due_envelopes(now=timezone.now() + timedelta(days=365)) == []
    assert envelope.error and "not JSON" in envelope.error


def test_a_retry_that_succeeds_processes_the_envelope_and_ends_its_retries(monkeypatch):
    envelope, _ = inbound.store_envelope(
        Channel.API, "crm-7", json.dumps(api_channel_message(id="crm-7")).encode()
    )
    with monkeypatch.context() as patch:
        patch.setattr(inbound, "receive", lambda message: 1 / 0)
        inbound.process_envelope(envelope)
    envelope.refresh_from_db()
    assert envelope.status == EnvelopeStatus.FAILED

    assert tasks.retry_due_envelopes() == 0, "not due yet"
    InboundEnvelope.objects.filter(pk=envelope.pk).update(next_attempt_at=timezone.now())
    assert tasks.retry_due_envelopes() == 1

    envelope.refresh_from_db()
    assert envelope.status == EnvelopeStatus.PROCESSED and envelope.next_attempt_at is None
    assert envelope.attempts == 2
    assert envelope.message.body_text == "Where is my order?"


def test_a_claimed_retry_is_not_taken_by_a_second_sweep():
    envelope = failed_envelope()
    due = envelope.next_attempt_at
    InboundEnvelope.objects.filter(pk=envelope.pk).update(next_attempt_at=due + inbound.ENVELOPE_RETRY_LEASE)

    assert inbound.retry_due_envelopes(now=due) == []
    envelope.refresh_from_db()
    assert envelope.attempts == 1


def test_the_replay_command_still_replays_an_envelope_whose_tries_are_spent():
    envelope = failed_envelope()
    InboundEnvelope.objects.filter(pk=envelope.pk).update(attempts=8, next_attempt_at=None)

    (replayed,) = inbound.replay_envelopes(envelope_ids=[envelope.pk])

    assert replayed.attempts == 9 and replayed.status == EnvelopeStatus.FAILED
    assert replayed.next_attempt_at is None


def test_health_counts_failed_envelopes_and_those_whose_tries_are_spent():
    failed_envelope("bad-1")
    spent = failed_envelope("bad-2")
    InboundEnvelope.objects.filter(pk=spent.pk).update(attempts=8, next_attempt_at=None)

    report = run_check("envelopes", check_envelopes)

    assert report == {"status": "warning", "failed": 2, "gave_up": 1, "limit": 0}
