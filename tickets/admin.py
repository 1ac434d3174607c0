"""Admin for setup: users, teams, customers.

Tickets change through services, so ticket history is read-only here."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from tickets import inbound
from tickets.exceptions import InvalidIdentity
from tickets.identities import normalize_address
from tickets.models import (
    Attachment,
    Customer,
    DeliveryAttempt,
    Identity,
    InboundEnvelope,
    Message,
    Organization,
    SubscriberBatch,
    Team,
    Ticket,
    TicketEvent,
    User,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "role", "is_active"]
    list_filter = ["role", "is_active", "teams"]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        ("Helpdesk", {"fields": ["role", "locale", "timezone"]}),
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("Helpdesk", {"fields": ["role", "email", "first_name", "last_name"]}),
    ]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["members"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


class IdentityForm(forms.ModelForm):
    """Stored normalized, as receive() looks addresses up; else the next message makes a new customer."""

    class Meta:
        model = Identity
        fields = ["customer", "channel", "address", "display_name"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("channel") and cleaned.get("address"):
            try:
                cleaned["address"] = normalize_address(cleaned["channel"], cleaned["address"])
            except InvalidIdentity as error:
                self.add_error("address", str(error))
        return cleaned


class IdentityInline(admin.TabularInline):
    model = Identity
    form = IdentityForm
    extra = 1
    fields = ["channel", "address", "display_name"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "locale", "last_contact_at", "created_at"]
    search_fields = ["name", "identities__address"]
    list_select_related = ["organization"]
    raw_id_fields = ["user"]
    autocomplete_fields = ["organization"]
    inlines = [IdentityInline]
    show_full_result_count = False


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    form = IdentityForm
    list_display = ["address", "channel", "customer", "display_name"]
    list_filter = ["channel"]
    search_fields = ["address", "display_name"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


class MessageInline(admin.StackedInline):
    model = Message
    extra = 0
    can_delete = False
    fields = [
        "direction",
        "kind",
        "channel",
        "author",
        "customer",
        "body_text",
        "delivery_status",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Browse and search; status and assignment change through the API/workspace services."""

    list_display = [
        "number",
        "subject",
        "status",
        "priority",
        "channel",
        "customer",
        "assignee",
        "team",
        "updated_at",
    ]
    list_filter = ["status", "priority", "channel", "team"]
    search_fields = ["=number", "subject"]
    list_select_related = ["customer", "assignee", "team"]
    readonly_fields = [f.name for f in Ticket._meta.fields]
    inlines = [MessageInline]
    show_full_result_count = False
    date_hierarchy = None

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "ticket", "direction", "kind", "channel", "delivery_status", "created_at"]
    list_filter = ["direction", "kind", "channel", "delivery_status"]
    list_select_related = ["ticket"]
    show_full_result_count = False


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ["filename", "content_type", "size", "message", "created_at"]
    show_full_result_count = False


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ["message", "started_at", "succeeded", "permanent", "duration_ms", "error"]
    list_filter = ["succeeded", "permanent"]
    show_full_result_count = False


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyAdmin):
    list_display = ["name", "ticket", "actor", "created_at", "published_at"]
    list_filter = ["name"]
    list_select_related = ["ticket", "actor"]
    show_full_result_count = False


@admin.register(SubscriberBatch)
class SubscriberBatchAdmin(ReadOnlyAdmin):
    """Events sent to a subscriber whose task has not run yet: rows piling up here mean stranded work."""

    list_display = ["subscriber", "created_at", "resend_at", "sends"]
    list_filter = ["subscriber"]
    show_full_result_count = False


@admin.register(InboundEnvelope)
class InboundEnvelopeAdmin(ReadOnlyAdmin):
    list_display = ["channel", "external_id", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "channel"]
    search_fields = ["external_id"]
    exclude = ["payload"]
    readonly_fields = [
        "channel",
        "external_id",
        "source",
        "status",
        "error",
        "attempts",
        "message",
        "received_at",
    ]
    actions = ["replay"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.is_superuser

    @admin.action(description="Replay the selected envelopes")
    def replay(self, request, queryset) -> None:
        done = inbound.replay_envelopes(envelope_ids=list(queryset.values_list("pk", flat=True)))
        failed = sum(1 for envelope in done if envelope.status == "failed")
        self.message_user(request, f"Replayed {len(done)} envelopes, {failed} failed.", messages.INFO)
