from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tickets.models.choices import Channel, Priority, Status
from tickets.models.people import Customer, Team
from tickets.models.search import SearchDocument

# Statuses in which a ticket still needs work; solved tickets are reopened by a reply, closed ones never.
ACTIVE_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)


class TicketNumber(models.Func):
    """The next human ticket number, from a sequence so numbers stay short and never repeat."""

    function = "nextval"
    template = "nextval('tickets_ticket_number_seq')"
    output_field = models.BigIntegerField()


class Ticket(models.Model):
    number = models.BigIntegerField(_("number"), unique=True, db_default=TicketNumber(), editable=False)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(
        _("priority"), max_length=16, choices=Priority.choices, default=Priority.NORMAL
    )
    channel = models.CharField(_("origin channel"), max_length=16, choices=Channel.choices)
    # Foreign keys that lead a composite index (Meta.indexes) get no index of their own, and sparse ones
    # a partial index: every index is written on each new ticket and on each updated_at bump.
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets", db_index=False)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # Deleting people or teams must not silently unroute tickets (every agent sees unrouted ones).
        on_delete=models.PROTECT,
        related_name="assigned_tickets",
        db_index=False,
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="tickets", db_index=False
    )
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    # The channel's own conversation key (widget conversation, call id, root Message-ID), used for threading.
    thread_key = models.CharField(max_length=255, blank=True)
    follow_up_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(default=timezone.now, db_default=Now())
    first_response_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["-updated_at", "-id"], name="ticket_recent"),
            models.Index(fields=["status", "-updated_at"], name="ticket_status_recent"),
            models.Index(fields=["team", "status", "-updated_at"], name="ticket_team_queue"),
            models.Index(fields=["assignee", "status", "-updated_at"], name="ticket_assignee_queue"),
            models.Index(fields=["customer", "-updated_at"], name="ticket_customer_history"),
            models.Index(
                fields=["channel", "thread_key"], name="ticket_thread_key", condition=~Q(thread_key="")
            ),
            GinIndex(fields=["tags"], name="ticket_tags"),
            GinIndex(SearchDocument("subject"), name="ticket_subject_search"),
            models.Index(
                fields=["follow_up_of"], name="ticket_follow_ups", condition=Q(follow_up_of__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class TicketEvent(models.Model):
    """Append-only audit trail of every change, and the outbox of domain events.

    `published_at` stays null until the domain event has been handed to Celery; a beat task
    republishes rows left unpublished (a process killed between commit and publish).
    """

    # Indexed by event_ticket_timeline and, where set, event_actor (inbound events have no actor).
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events", db_index=False)
    name = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    message = models.ForeignKey(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # {"field": [before, after], ...}
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="event_ticket_timeline"),
            models.Index(fields=["created_at"], name="event_unpublished", condition=Q(published_at=None)),
            models.Index(fields=["actor"], name="event_actor", condition=Q(actor__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.name} on ticket {self.ticket_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError("Ticket events are append-only")
        super().save(*args, **kwargs)


class SubscriberBatch(models.Model):
    """Domain events sent to one subscriber task, kept until that task has run (helpdesk/events.py).

    Written just before the batch goes to Celery and deleted by the task once it ran, so a row still here long
    after it was sent is a batch the broker lost or a task that kept failing: `resend_at` says when the sweep
    sends it again. Holds ids only; the events are read again when it is resent.
    """

    subscriber = models.CharField(max_length=200)  # a task path from SUBSCRIBERS
    event_ids = ArrayField(models.BigIntegerField())
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    resend_at = models.DateTimeField()
    sends = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["resend_at"], name="subscriber_batch_due")]

    def __str__(self) -> str:
        return f"{len(self.event_ids)} events for {self.subscriber}"
