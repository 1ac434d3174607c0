"""The API channel's wire format: one JSON message pushed by an integration (see the API docs); pure."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from tickets.channels import InboundAttachment, InboundMessage
from tickets.models import Channel


class ApiPayloadError(ValueError):
    """The JSON document pushed to the API channel is not a message."""


def parse_api_payload(payload: bytes, source: dict[str, Any]) -> InboundMessage:
    """The message in `payload`, or ApiPayloadError saying what is wrong with it (`source` is unused)."""
    try:
        document = json.loads(payload)
    except ValueError as error:  # not UTF-8, not JSON, or an integer past Python's 4,300 digits
        raise ApiPayloadError(f"not JSON: {error}") from None
    except RecursionError:
        raise ApiPayloadError("not JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise ApiPayloadError("expected a JSON object")
    customer = document.get("customer") or {}
    if not isinstance(document.get("id"), str | int) or document.get("id") in ("", None):
        raise ApiPayloadError('"id" must be the integration\'s own id for the message (string or number)')
    try:
        attachments = tuple(
            InboundAttachment(
                filename=str(item["filename"]),
                content_type=str(item.get("content_type") or "application/octet-stream"),
                content=base64.b64decode(item["content_base64"], validate=True),
                content_id=str(item.get("content_id") or ""),
            )
            for item in document.get("attachments") or ()
        )
        sent_at = _sent_at(document.get("sent_at"))
        return InboundMessage(
            channel=Channel.API,
            external_id=str(document["id"]),
            sender_address=str(customer["id"]),
            sender_name=str(customer.get("name") or ""),
            sender_locale=str(customer.get("locale") or ""),
            text=str(document.get("text") or ""),
            html=str(document.get("html") or ""),
            subject=str(document.get("subject") or ""),
            thread_key=str(document.get("thread_key") or ""),
            in_reply_to=tuple(str(ref) for ref in document.get("in_reply_to") or ()),
            sent_at=sent_at,
            attachments=attachments,
        )
    except (KeyError, TypeError, AttributeError, binascii.Error, ValueError) as error:
        raise ApiPayloadError(f"malformed message: {error!r}") from None


def _sent_at(value: Any) -> datetime | None:
    """When the customer sent the message, in UTC; a time without a UTC offset is taken as UTC."""
    if not value:
        return None
    # parse_datetime answers None for text that is not a date: a time we cannot read is refused.
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ApiPayloadError(f"malformed message: sent_at is not an ISO 8601 date and time: {value!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        # PostgreSQL refuses UTC offsets past ±15:59, which Python reads (up to ±23:59).
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ApiPayloadError(f"malformed message: sent_at is out of range: {value!r}") from None
