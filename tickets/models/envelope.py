from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from tickets.models.choices import Channel, EnvelopeStatus


class InboundEnvelope(models.Model):
    """A raw inbound payload, stored before anything parses it, so nothing a customer sent is lost."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    # The channel's own id for the payload: Message-ID, update_id, callId, widget message uuid.
    external_id = models.CharField(max_length=255)
    payload = models.BinaryField()
    # Where it came from (mailbox, bot, remote address); the parser may read it.
    source = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=EnvelopeStatus.choices, default=EnvelopeStatus.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When a failed envelope is tried again automatically (tickets.inbound.ENVELOPE_RETRY_BACKOFF); null
    # when it is not failed, or its tries are spent and it waits for a replay by hand.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now, db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="envelope_unique_external_id"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="envelope_unfinished",
                condition=Q(status__in=[EnvelopeStatus.PENDING, EnvelopeStatus.FAILED]),
            ),
            models.Index(
                fields=["next_attempt_at"],
                name="envelope_retry_due",
                condition=Q(status=EnvelopeStatus.FAILED, next_attempt_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.external_id} ({self.status})"
