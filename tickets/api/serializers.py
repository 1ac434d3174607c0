"""Output shapes shared by several endpoints. Input serializers live beside their view."""

from rest_framework import serializers

from tickets.models import Attachment, Customer, Identity, Message, Team, Ticket, TicketEvent, User


class UserBriefSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "name", "role"]

    def get_name(self, user: User) -> str:
        return user.get_full_name() or user.username


class TeamBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["id", "channel", "address", "display_name"]


class CustomerBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "locale"]


class TicketRowSerializer(serializers.ModelSerializer):
    customer = CustomerBriefSerializer()
    assignee = UserBriefSerializer(allow_null=True)
    team = TeamBriefSerializer(allow_null=True)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "number",
            "subject",
            "status",
            "priority",
            "channel",
            "customer",
            "assignee",
            "team",
            "tags",
            "follow_up_of",
            "created_at",
            "updated_at",
            "first_response_at",
            "solved_at",
        ]


# Renders times exactly as the serializers' own DateTimeFields do (format and time zone from settings).
_DATETIME = serializers.DateTimeField()


class TicketListRowSerializer(TicketRowSerializer):
    """The same row as TicketRowSerializer, built directly: the ticket list renders 50 of these per page,
    and DRF's generic field walk was most of that page's time (bench/RESULTS.md). A test keeps both equal.
    """

    def to_representation(self, ticket: Ticket) -> dict:
        when = _DATETIME.to_representation
        customer, assignee, team = ticket.customer, ticket.assignee, ticket.team
        return {
            "id": ticket.pk,
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "channel": ticket.channel,
            "customer": {"id": customer.pk, "name": customer.name, "locale": customer.locale},
            "assignee": {
                "id": assignee.pk,
                "username": assignee.username,
                "name": assignee.get_full_name() or assignee.username,
                "role": assignee.role,
            }
            if assignee
            else None,
            "team": {"id": team.pk, "name": team.name} if team else None,
            "tags": list(ticket.tags),
            "follow_up_of": ticket.follow_up_of_id,
            "created_at": when(ticket.created_at),
            "updated_at": when(ticket.updated_at),
            "first_response_at": when(ticket.first_response_at) if ticket.first_response_at else None,
            "solved_at": when(ticket.solved_at) if ticket.solved_at else None,
        }


class AttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attachment
        fields = ["id", "filename", "content_type", "size", "sha256", "content_id"]


class MessageSerializer(serializers.ModelSerializer):
    author = UserBriefSerializer(allow_null=True)
    attachments = AttachmentSerializer(many=True)
    # Why body_html is empty although the message was written in HTML (tickets.content.message_body).
    content_note = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "kind",
            "channel",
            "author",
            "customer",
            "body_text",
            "body_html",
            "external_id",
            "delivery_status",
            "delivery_error",
            "created_at",
            "sent_at",
            "attachments",
            "content_note",
        ]

    def get_content_note(self, message: Message) -> str:
        return (message.channel_data or {}).get("content_note", "")


class EventSerializer(serializers.ModelSerializer):
    actor = UserBriefSerializer(allow_null=True)

    class Meta:
        model = TicketEvent
        fields = ["id", "name", "actor", "message", "changes", "created_at"]


class TicketDetailSerializer(TicketRowSerializer):
    messages = MessageSerializer(many=True, source="timeline")
    events = EventSerializer(many=True, source="audit_trail")

    class Meta(TicketRowSerializer.Meta):
        fields = [*TicketRowSerializer.Meta.fields, "custom_fields", "closed_at", "messages", "events"]


class CustomerSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    # Most customers belong to no organization: null, and documented so.
    organization = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "locale",
            "timezone",
            "organization",
            "notes",
            "identities",
            "created_at",
            "last_contact_at",
        ]


class CustomerDetailSerializer(CustomerSerializer):
    tickets = TicketRowSerializer(many=True, source="recent_tickets")

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "tickets"]
