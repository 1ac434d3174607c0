"""The customer portal API: a signed-in customer reads their own tickets and nothing else."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from tickets import selectors
from tickets.api.permissions import IsCustomer
from tickets.models import Message, Ticket


class PortalMessageSerializer(serializers.ModelSerializer):
    author_name = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "direction", "channel", "author_name", "body_text", "body_html", "created_at"]

    def get_author_name(self, message: Message) -> str:
        return message.author.get_full_name() or message.author.username if message.author else ""


class PortalTicketSerializer(serializers.ModelSerializer):
    class Meta:
        model = Ticket
        fields = ["id", "number", "subject", "status", "channel", "created_at", "updated_at"]


class PortalTicketDetailSerializer(PortalTicketSerializer):
    messages = serializers.SerializerMethodField()

    class Meta(PortalTicketSerializer.Meta):
        fields = [*PortalTicketSerializer.Meta.fields, "messages"]

    @extend_schema(responses=PortalMessageSerializer(many=True))
    def get_messages(self, ticket: Ticket) -> list[dict]:
        public = selectors.ticket_timeline(ticket, include_internal=False)
        return PortalMessageSerializer(public, many=True).data


class PortalTicketPagination(CursorPagination):
    # The default ordering ("-created") names no field of Ticket; id breaks ties between equal times.
    ordering = ("-updated_at", "-id")


class PortalTicketListApi(generics.ListAPIView):
    permission_classes = [IsCustomer]
    serializer_class = PortalTicketSerializer
    pagination_class = PortalTicketPagination
    filter_backends = []

    def get_queryset(self):
        return selectors.customer_tickets(self.request.user)


class PortalTicketDetailApi(APIView):
    permission_classes = [IsCustomer]

    @extend_schema(responses=PortalTicketDetailSerializer)
    def get(self, request, ticket_id: int):
        ticket = selectors.ticket_for_customer(request.user, ticket_id)
        return Response(PortalTicketDetailSerializer(ticket).data)
