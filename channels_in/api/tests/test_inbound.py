"""The API channel's wire format, parsed without a database."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from channels_in.api.inbound import ApiPayloadError, parse_api_payload
from tickets.channels import InboundAttachment


def payload(**fields) -> bytes:
    message = {"id": "crm-4711", "customer": {"id": "crm-customer-42", "name": "Ivan Petrov", "locale": "ru"}}
    message.update(fields)
    return json.dumps(message).encode()


def test_a_pushed_message_becomes_an_inbound_message_on_the_api_channel():
    parsed = parse_api_payload(
        payload(
            subject="Order not delivered",
            text="Where is my order?",
            thread_key="order-1009",
            in_reply_to=["crm-4700", 4701],
            sent_at="2024-03-01T10:15:00Z",
        ),
        {},
    )

    assert (parsed.channel, parsed.external_id, parsed.sender_address) == (
        "api",
        "crm-4711",
        "crm-customer-42",
    )
    assert (parsed.sender_name, parsed.sender_locale) == ("Ivan Petrov", "ru")
    assert (parsed.subject, parsed.text, parsed.thread_key) == (
        "Order not delivered",
        "Where is my order?",
        "order-1009",
    )
    assert parsed.in_reply_to == ("crm-4700", "4701")
    assert parsed.sent_at == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "sent_at",
    [
        "2024-03-01T10:15:00",
        "2024-03-01T10:15:00+00:00",
        "2024-03-01T15:15:00+05:00",
        "2024-02-29T11:35:00-22:40",
    ],
)
def test_the_time_a_message_was_sent_is_read_in_utc(sent_at):
    parsed = parse_api_payload(payload(sent_at=sent_at), {})

    assert parsed.sent_at == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    assert parsed.sent_at.utcoffset() == timedelta(0)


def test_a_numeric_message_id_is_kept_as_text():
    assert parse_api_payload(payload(id=4711), {}).external_id == "4711"


def test_attachments_arrive_decoded_from_base64():
    content = "счёт".encode()
    parsed = parse_api_payload(
        payload(
            attachments=[{"filename": "invoice.txt", "content_base64": base64.b64encode(content).decode()}]
        ),
        {},
    )

    assert parsed.attachments == (InboundAttachment("invoice.txt", "application/octet-stream", content),)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (payload(id=""), '"id" must be'),
        (payload(id=None), '"id" must be'),
        (payload(id=["crm-1"]), '"id" must be'),
        (payload(customer=None), "malformed message"),
        (payload(customer="crm-customer-42"), "malformed message"),
        (payload(attachments=[{"filename": "x", "content_base64": "not base64!"}]), "malformed message"),
        (payload(attachments=[{"content_base64": ""}]), "malformed message"),
        (payload(sent_at="yesterday-ish"), "malformed message"),
        (payload(sent_at="2024-13-45T99:00:00"), "malformed message"),
        (payload(sent_at=1709288100), "malformed message"),
        (payload(sent_at="0001-01-01T00:00:00+05:00"), "malformed message"),
    ],
)
def test_what_is_not_a_message_is_refused_with_the_reason(raw, reason):
    with pytest.raises(ApiPayloadError, match=reason):
        parse_api_payload(raw, {})
