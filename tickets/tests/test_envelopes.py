"""Inbound envelopes: what strangers send is cleaned and kept."""

import json

import pytest

from conftest import inbound_message
from tickets import inbound
from tickets.models import Channel, EnvelopeStatus, InboundEnvelope, Message, Ticket

pytestmark = pytest.mark.django_db

INBOUND = "/api/v1/inbound/messages/"


def crm_message(**overrides) -> dict:
    message = {
        "id": "crm-5001",
        "customer": {"id": "crm-customer-77", "name": "Olga", "locale": "ru"},
        "subject": "Order not delivered",
        "text": "Where is my order?",
        "thread_key": "order-2001",
    }
    message.update(overrides)
    return message


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
        ({"in_reply_to": ["crm-1\x00"]}, lambda m: m.ticket.thread_key == "order-2001"),
        ({"html": "<p>Hi \ud800 there</p>", "text": ""}, lambda m: m.body_text == "Hi \ufffd there"),
        ({"subject": "Refund\x00"}, lambda m: m.ticket.subject == "Refund\ufffd"),
        (
            {"customer": {"id": "crm-customer-77", "name": "Ol\x00ga"}},
            lambda m: m.ticket.customer.name == "Ol\ufffdga",
        ),
        (
            {"customer": {"id": "crm-customer-77", "locale": "r\x00"}},
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
    raw = json.dumps(crm_message(**overrides)).encode()

    message = stored_message(post_raw(api_client(dave), raw))

    assert stored(message)
    envelope = InboundEnvelope.objects.get()
    assert bytes(envelope.payload) == raw, "the original bytes stay in the envelope"
    assert envelope.attempts == 1


@pytest.mark.parametrize("external_id", ["crm\x005001", "crm\ud8005001"])
def test_an_id_the_database_cannot_store_is_kept_hashed_and_stays_idempotent(api_client, dave, external_id):
    raw = json.dumps(crm_message(id=external_id)).encode()

    first = stored_message(post_raw(api_client(dave), raw))
    again = stored_message(post_raw(api_client(dave), raw))
    other = stored_message(post_raw(api_client(dave), json.dumps(crm_message(id="crm\ufffd5001")).encode()))

    assert again.pk == first.pk
    assert first.external_id.startswith("sha256:")
    assert other.pk != first.pk, "a different id never becomes the same message"
    assert InboundEnvelope.objects.count() == 2


def test_a_reply_to_an_id_with_nul_threads_into_that_messages_ticket(api_client, dave):
    first = stored_message(post_raw(api_client(dave), json.dumps(crm_message(id="crm\x001")).encode()))
    reply = crm_message(id="crm-2", thread_key="", in_reply_to=["crm\x001"], text="Any news?")

    second = stored_message(post_raw(api_client(dave), json.dumps(reply).encode()))

    assert second.ticket_id == first.ticket_id


def test_a_5000_digit_number_anywhere_in_the_payload_is_a_400_and_nothing_is_stored(api_client, dave):
    raw = json.dumps(crm_message())[:-1].encode() + b', "order": ' + b"9" * 5000 + b"}"

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
