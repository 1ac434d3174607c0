"""The port between the core and the channels.

Inbound: a channel's parser turns its wire format into one `InboundMessage` and the core's
`tickets.inbound.receive()` takes it from there. Outbound: `tickets.replies.deliver()` builds an
`OutboundMessage` and hands it to the adapter registered for the ticket's channel. The registry maps a
channel name to dotted paths, imported on first use, so the core never imports a channel app.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Protocol, Self

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from tickets.exceptions import UnknownChannel
from tickets.models import Channel, MessageKind

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a customer sent, in the same shape whatever the channel."""

    channel: str
    # The channel's own id for this message: the idempotency key (Message-ID, chat:message id, call id).
    external_id: str
    sender_address: str
    sender_name: str = ""
    text: str = ""
    html: str = ""
    subject: str = ""
    # The channel's conversation key (widget conversation, Telegram chat, call id) if it has one.
    thread_key: str = ""
    # External ids of earlier messages this one answers (an email's In-Reply-To and References).
    in_reply_to: tuple[str, ...] = ()
    # The channel knows this starts a new conversation (an email that references nothing).
    new_conversation: bool = False
    kind: str = MessageKind.MESSAGE
    sent_at: datetime | None = None
    sender_locale: str = ""
    attachments: tuple[InboundAttachment, ...] = ()
    channel_data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.external_id:
            raise ValueError("An inbound message needs the channel's own id (external_id) to be idempotent")


@dataclass(frozen=True, slots=True)
class OutboundAttachment:
    filename: str
    content_type: str
    # Name in Django's default storage; adapters open it with default_storage.open().
    storage_name: str


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """An answer to deliver: everything the adapter needs, without touching the ORM."""

    message_id: int
    ticket_id: int
    ticket_number: int
    channel: str
    recipient_address: str
    recipient_name: str
    subject: str
    text: str
    html: str = ""
    thread_key: str = ""
    in_reply_to: tuple[str, ...] = ()
    attachments: tuple[OutboundAttachment, ...] = ()
    # From the customer's latest message on this ticket: which mailbox, bot or chat to answer from.
    channel_data: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """The channel did not take the message.

    `permanent=True` (bot blocked, mailbox gone) stops at once; otherwise the delivery retries with
    backoff, waiting at least `retry_after` seconds when the channel said so (HTTP 429).
    """

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class ChannelAdapter(Protocol):
    channel: ClassVar[str]

    @classmethod
    def for_message(cls, message: OutboundMessage) -> Self:
        """The adapter configured to send this message (the right mailbox, bot or number)."""
        ...

    def deliver(self, message: OutboundMessage) -> str:
        """Send the message; return the channel's id for it, or raise DeliveryError."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelEntry:
    adapter: str
    # Parses a stored InboundEnvelope's payload: (payload, source) -> InboundMessage, or None to ignore.
    parser: str | None = None


REGISTRY: dict[str, ChannelEntry] = {
    Channel.API: ChannelEntry(
        adapter="tickets.channels.ApiAdapter", parser="tickets.channels.parse_api_payload"
    ),
}


def _entry(channel: str) -> ChannelEntry:
    overrides = getattr(settings, "CHANNEL_ADAPTERS", {}) or {}
    if channel in overrides:
        base = REGISTRY.get(channel)
        return ChannelEntry(adapter=overrides[channel], parser=base.parser if base else None)
    try:
        return REGISTRY[channel]
    except KeyError:
        raise UnknownChannel(f"No adapter is configured for the {channel!r} channel") from None


@cache
def _import(path: str) -> Any:
    return import_string(path)


def adapter_class_for(channel: str) -> type[ChannelAdapter]:
    """The adapter class that delivers on `channel`; every channel goes to the log when DELIVER_TO_LOG."""
    if settings.DELIVER_TO_LOG:
        return LogAdapter
    return _import(_entry(channel).adapter)


def parser_for(channel: str) -> Callable[[bytes, dict[str, Any]], InboundMessage | None]:
    entry = _entry(channel)
    if entry.parser is None:
        raise UnknownChannel(f"The {channel!r} channel has no inbound parser")
    return _import(entry.parser)


class LogAdapter:
    """Writes replies to the log instead of sending them: the demo and development channel."""

    channel: ClassVar[str] = "log"

    @classmethod
    def for_message(cls, message: OutboundMessage) -> LogAdapter:
        return cls()

    def deliver(self, message: OutboundMessage) -> str:
        logger.info(
            "Reply on ticket #%s via %s to %s: %s",
            message.ticket_number,
            message.channel,
            message.recipient_address,
            message.text[:200],
        )
        return f"log-{message.message_id}"


class ApiAdapter(LogAdapter):
    """Replies on API tickets are read back through the API and the customer portal: nothing to send."""

    channel: ClassVar[str] = Channel.API

    def deliver(self, message: OutboundMessage) -> str:
        return f"api-{message.message_id}"


class ApiPayloadError(ValueError):
    """The JSON document pushed to the API channel is not a message."""


def parse_api_payload(payload: bytes, source: dict[str, Any]) -> InboundMessage:
    """The API channel's wire format: a JSON message pushed by an integration (see the API docs)."""
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
        sent_at = parse_datetime(document["sent_at"]) if document.get("sent_at") else None
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
