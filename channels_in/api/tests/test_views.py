"""POST /api/v1/inbound/messages/: an integration pushes a customer's message through the one pipeline."""

import json
import re

import pytest
from rest_framework.test import APIClient

from channels_in.api.inbound import parse_api_payload
from conftest import api_channel_message
from helpdesk import events
from tickets.models import Channel, EnvelopeStatus, Identity, InboundEnvelope, Message, Ticket

pytestmark = pytest.mark.django_db

URL = "/api/v1/inbound/messages/"


def test_inbound_api_message_becomes_a_ticket_through_the_one_pipeline(api_client, dave, captured_events):
    response = api_client(dave).post(URL, api_channel_message(), format="json")

    assert response.status_code == 202
    stored = response.json()
    assert stored["status"] == EnvelopeStatus.PROCESSED
    ticket = Ticket.objects.get(pk=stored["ticket"])
    assert (ticket.channel, ticket.subject, ticket.thread_key) == (
        Channel.API,
        "Order not delivered",
        "order-1009",
    )
    assert ticket.customer.name == "Ivan Petrov"
    assert Identity.objects.get(channel=Channel.API).address == "crm-customer-42"
    assert Message.objects.get(pk=stored["message"]).body_text == "Where is my order?"
    assert captured_events.names == [events.TICKET_CREATED, events.MESSAGE_RECEIVED]


def test_inbound_api_message_sent_twice_is_stored_once(api_client, dave):
    first = api_client(dave).post(URL, api_channel_message(), format="json").json()
    again = api_client(dave).post(URL, api_channel_message(), format="json")

    assert again.status_code == 202
    assert again.json()["envelope"] == first["envelope"] and again.json()["message"] == first["message"]
    assert InboundEnvelope.objects.count() == 1 and Message.objects.count() == 1


def test_inbound_api_message_with_the_same_thread_key_joins_the_ticket(api_client, dave):
    first = api_client(dave).post(URL, api_channel_message(), format="json").json()
    second = api_client(dave).post(
        URL, api_channel_message(id="crm-4712", text="Still waiting"), format="json"
    )

    assert second.json()["ticket"] == first["ticket"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        json.dumps({"customer": {"id": "crm-customer-42"}, "text": "no id"}).encode(),
        json.dumps({"id": "crm-1", "text": "no customer"}).encode(),
    ],
)
def test_inbound_api_refuses_what_is_not_a_message_and_stores_nothing(api_client, dave, body):
    response = api_client(dave).post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert InboundEnvelope.objects.count() == 0


def test_inbound_api_is_for_admins(api_client, alice, carol, ivan):
    # Outside tickets.api.urls, so the access sweep in tickets/tests/test_api_access.py does not reach it.
    answers = {
        who: api_client(user).post(URL, api_channel_message(), format="json").status_code
        for who, user in [
            ("agent", alice),
            ("supervisor", carol),
            ("customer", ivan.user),
            ("anonymous", None),
        ]
    }

    assert answers == {"agent": 403, "supervisor": 403, "customer": 403, "anonymous": 401}
    assert InboundEnvelope.objects.count() == 0


def test_inbound_api_refuses_a_form_post(api_client, dave):
    response = api_client(dave).post(URL, {"id": "crm-1"}, format="multipart")

    assert response.status_code == 415
    assert InboundEnvelope.objects.count() == 0


def test_the_schema_documents_the_message_format_the_parser_reads(db):
    schema = json.loads(APIClient().get("/api/schema/", {"format": "json"}).content)
    body = schema["paths"][URL]["post"]["requestBody"]["content"]["application/json"]
    documented = schema["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]

    assert set(documented["properties"]) == {
        "id",
        "customer",
        "subject",
        "text",
        "html",
        "thread_key",
        "in_reply_to",
        "sent_at",
        "attachments",
    }
    assert set(documented["required"]) == {"id", "customer"}
    example = body["examples"]["Message"]["value"]
    assert parse_api_payload(json.dumps(example).encode(), {}).sender_address == example["customer"]["id"]


@pytest.mark.parametrize(
    ("customer_id", "status"), [("crm-customer-42", 202), ("crm-c", 400), ("crm customer", 400)]
)
def test_the_documented_customer_id_pattern_is_the_one_the_endpoint_enforces(
    api_client, dave, customer_id, status
):
    schema = json.loads(APIClient().get("/api/schema/", {"format": "json"}).content)
    pattern = schema["components"]["schemas"]["CustomerInput"]["properties"]["id"]["pattern"]

    response = api_client(dave).post(URL, api_channel_message(customer={"id": customer_id}), format="json")

    assert bool(re.search(pattern, customer_id)) == (status == 202)
    assert response.status_code == status
