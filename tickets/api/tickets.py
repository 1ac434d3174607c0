from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from tickets import lifecycle, replies, selectors
from tickets.api.filters import StrictOrderingFilter, TicketFilter
from tickets.api.schema import CONFLICT
from tickets.api.serializers import TicketDetailSerializer, TicketListRowSerializer
from tickets.models import Channel, Priority, Role, Status, Team, User


@extend_schema_field(OpenApiTypes.INT)
class AgentField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return User.objects.filter(is_active=True).exclude(role=Role.CUSTOMER)


class TicketCursorPagination(CursorPagination):
    """Pages in the requested order, ties broken by id: tickets with equal times never repeat or vanish."""

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        ordering = tuple(super().get_ordering(request, queryset, view))
        if ordering[-1].lstrip("-") not in ("id", "pk", "number"):
            ordering = (*ordering, "-id" if ordering[0].startswith("-") else "id")
        return ordering


class TicketListApi(generics.ListAPIView):
    """Tickets the caller may see, newest activity first, cursor-paginated."""

    serializer_class = TicketListRowSerializer
    pagination_class = TicketCursorPagination
    filterset_class = TicketFilter
    filter_backends = [*generics.ListAPIView.filter_backends, StrictOrderingFilter]
    ordering_fields = ["updated_at", "created_at", "number"]
    ordering = "-updated_at"

    def get_queryset(self):
        return selectors.ticket_inbox(self.request.user)

    class TicketCreateInput(serializers.Serializer):
        customer = serializers.IntegerField(min_value=1)
        subject = serializers.CharField(max_length=255)
        text = serializers.CharField(required=False, allow_blank=True, default="")
        html = serializers.CharField(required=False, allow_blank=True, default="")
        channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)
        priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
        team = serializers.PrimaryKeyRelatedField(
            queryset=Team.objects.all(), required=False, allow_null=True
        )
        assignee = AgentField(required=False, allow_null=True)
        tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)

        def validate(self, attrs):
            if not attrs["text"].strip() and not attrs["html"].strip():
                raise serializers.ValidationError({"text": ["Write the first message (text or html)."]})
            return attrs

    @extend_schema(request=TicketCreateInput, responses={201: TicketDetailSerializer})
    def post(self, request):
        data = self.TicketCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        customer = selectors.customers_for_agent(request.user).filter(pk=fields.pop("customer")).first()
        if customer is None:
            raise serializers.ValidationError({"customer": ["No such customer."]})
        if (
            fields["channel"] != Channel.API
            and not customer.identities.filter(channel=fields["channel"]).exists()
        ):
            raise serializers.ValidationError(
                {"channel": [f"The customer has no {fields['channel']} address."]}
            )
        ticket = replies.open_ticket(customer, actor=request.user, **fields)
        # The caller may route it to a team they cannot see: answer with what was created, not a 404.
        return Response(
            TicketDetailSerializer(selectors.with_history(ticket)).data, status=status.HTTP_201_CREATED
        )


class TicketDetailApi(APIView):
    class TicketUpdateInput(serializers.Serializer):
        subject = serializers.CharField(max_length=255, required=False)
        status = serializers.ChoiceField(choices=Status.choices, required=False)
        priority = serializers.ChoiceField(choices=Priority.choices, required=False)
        assignee = AgentField(required=False, allow_null=True)
        team = serializers.PrimaryKeyRelatedField(
            queryset=Team.objects.all(), required=False, allow_null=True
        )
        tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
        custom_fields = serializers.DictField(required=False)

    @extend_schema(responses=TicketDetailSerializer)
    def get(self, request, ticket_id: int):
        ticket = selectors.ticket_detail(request.user, ticket_id)
        return Response(TicketDetailSerializer(ticket).data)

    @extend_schema(request=TicketUpdateInput, responses={200: TicketDetailSerializer, 409: CONFLICT})
    def patch(self, request, ticket_id: int):
        ticket = selectors.ticket_for_agent(request.user, ticket_id)
        data = self.TicketUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        lifecycle.update(ticket, actor=request.user, **data.validated_data)
        return Response(TicketDetailSerializer(selectors.with_history(ticket)).data)
