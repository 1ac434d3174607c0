"""The core domain's tables. Other apps read them through selectors and change them through services."""

from tickets.models.choices import (
    Channel,
    DeliveryStatus,
    Direction,
    EnvelopeStatus,
    MessageKind,
    Priority,
    Role,
    Status,
)
from tickets.models.envelope import InboundEnvelope
from tickets.models.message import Attachment, DeliveryAttempt, Message
from tickets.models.people import Customer, Identity, Organization, Team, User
from tickets.models.ticket import SubscriberBatch, Ticket, TicketEvent

__all__ = [
    "Attachment",
    "Channel",
    "Customer",
    "DeliveryAttempt",
    "DeliveryStatus",
    "Direction",
    "EnvelopeStatus",
    "Identity",
    "InboundEnvelope",
    "Message",
    "MessageKind",
    "Organization",
    "Priority",
    "Role",
    "Status",
    "SubscriberBatch",
    "Team",
    "Ticket",
    "TicketEvent",
    "User",
]
