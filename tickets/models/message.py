import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tickets.models.choices import Channel, DeliveryStatus, Direction, MessageKind
from tickets.models.people import Customer
from tickets.models.ticket import Ticket


class Message(models.Model):
    # The table also has `search_document`, a tsvector PostgreSQL computes from body_text (a stored generated
    # column, with the GIN index message_search; migration 0007, tickets.models.search). Left out of the
    # model on purpose: the ORM never reads it with a message, nor writes it.
    # Indexed by message_ticket_timeline and, where set, message_author (customers' messages have none).
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages", db_index=False)
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    kind = models.CharField(
        _("kind"), max_length=16, choices=MessageKind.choices, default=MessageKind.MESSAGE
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    body_text = models.TextField(_("text"), blank=True)
    # Sanitized with nh3 before it is stored; never the raw HTML a customer sent.
    body_html = models.TextField(_("HTML"), blank=True)
    # The channel's own id (Message-ID, Telegram chat:message, call id); null for notes.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 NULLs never collide
    # Channel details kept for replies and display: email To/Cc, call duration, Telegram chat id.
    channel_data = models.JSONField(default=dict, blank=True)
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, blank=True)
    delivery_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    sent_at = models.DateTimeField(null=True, blank=True)
    # When a temporarily failed delivery is tried again.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Per direction: our outbound ids (e.g. "api-12") must never pass for a customer's message.
            models.UniqueConstraint(
                fields=["channel", "external_id", "direction"], name="message_unique_external_id"
            ),
        ]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="message_ticket_timeline"),
            models.Index(fields=["author"], name="message_author", condition=Q(author__isnull=False)),
            models.Index(
                fields=["next_attempt_at", "created_at"],
                name="message_undelivered",
                condition=Q(delivery_status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} on ticket {self.ticket_id}"


def attachment_path(attachment: "Attachment", filename: str) -> str:
    """A generated name: what a customer called the file never reaches the file system."""
    suffix = PurePosixPath(filename).suffix.lower()[:16]
    if not suffix[1:].isalnum():
        suffix = ""
    return f"attachments/{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}{suffix}"


class Attachment(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=255)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    # Content-ID of an inline image referenced from the HTML body (cid:...).
    content_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class DeliveryAttempt(models.Model):
    """One try at handing an outbound message to its channel."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="delivery_attempts")
    started_at = models.DateTimeField(default=timezone.now, db_default=Now())
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    external_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    permanent = models.BooleanField(default=False)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{'sent' if self.succeeded else 'failed'} try of message {self.message_id}"
