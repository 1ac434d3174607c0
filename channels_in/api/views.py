"""The API channel's endpoint: store the pushed message as an envelope, then thread it into a ticket."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_in.api.inbound import ApiPayloadError, parse_api_payload
from tickets import inbound
from tickets.api.parsers import JSONParser
from tickets.api.permissions import IsAdmin
from tickets.exceptions import InvalidIdentity
from tickets.identities import VISITOR_ID, normalize_address
from tickets.models import Channel, EnvelopeStatus


class EnvelopeSerializer(serializers.Serializer):
    envelope = serializers.IntegerField(source="pk")
    status = serializers.CharField()
    # The traceback stays on the envelope for admins; the integration learns only that it is kept.
    error = serializers.SerializerMethodField()
    message = serializers.IntegerField(source="message_id", allow_null=True)
    ticket = serializers.SerializerMethodField()

    def get_error(self, envelope) -> str:
        return "Processing failed; the message is kept and will be replayed." if envelope.error else ""

    def get_ticket(self, envelope) -> int | None:
        return envelope.message.ticket_id if envelope.message_id else None


@extend_schema_field({"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]})
class MessageIdField(serializers.Field):
    """The integration's own id for the message: text or a number."""


class PushedMessageSerializer(serializers.Serializer):
    """The body parse_api_payload reads, for the schema: the view stores the raw body and parses that."""

    class CustomerInput(serializers.Serializer):
        id = serializers.RegexField(
            f"^{VISITOR_ID.pattern}$", help_text="The integration's own id for the customer."
        )
        name = serializers.CharField(required=False, allow_blank=True)
        locale = serializers.CharField(required=False, allow_blank=True)

    class AttachmentInput(serializers.Serializer):
        filename = serializers.CharField()
        content_type = serializers.CharField(required=False, allow_blank=True)
        content_base64 = serializers.CharField(allow_blank=True)
        content_id = serializers.CharField(required=False, allow_blank=True)

    id = MessageIdField(help_text="Sending the same id again stores the message once.")
    customer = CustomerInput()
    subject = serializers.CharField(required=False, allow_blank=True)
    text = serializers.CharField(required=False, allow_blank=True)
    html = serializers.CharField(required=False, allow_blank=True)
    thread_key = serializers.CharField(
        required=False, allow_blank=True, help_text="Messages with the same key join one ticket."
    )
    in_reply_to = serializers.ListField(child=serializers.CharField(), required=False)
    sent_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Without an offset: UTC.")
    attachments = AttachmentInput(many=True, required=False)


class InboundMessageApi(APIView):
    """Store a customer's message pushed by an integration, then thread it into a ticket."""

    permission_classes = [IsAdmin]
    parser_classes = [JSONParser]

    @extend_schema(
        request=PushedMessageSerializer,
        responses={202: EnvelopeSerializer},
        examples=[
            OpenApiExample(
                "message",
                value={
                    "id": "crm-4711",
                    "customer": {"id": "crm-customer-42", "name": "Ivan Petrov", "locale": "ru"},
                    "subject": "Order not delivered",
                    "text": "Where is my order?",
                    "thread_key": "order-1009",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        # The raw body is what gets stored, so DRF never parses it; its content negotiation still decides
        # whether the body is JSON at all, as for every other endpoint.
        if request.negotiator.select_parser(request, self.get_parsers()) is None:
            raise exceptions.UnsupportedMediaType(request.content_type)
        raw = request.body
        try:
            parsed = parse_api_payload(raw, {})
        except ApiPayloadError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        # A sender we could never store is the integration's mistake: refuse it now, not on replay.
        try:
            normalize_address(parsed.channel, parsed.sender_address)
        except InvalidIdentity as error:
            return Response({"customer": {"id": [str(error)]}}, status=status.HTTP_400_BAD_REQUEST)
        envelope, _ = inbound.store_envelope(
            Channel.API, parsed.external_id, raw, source={"user": request.user.pk}
        )
        if envelope.status != EnvelopeStatus.PROCESSED:
            envelope = inbound.process_envelope(envelope)
        return Response(EnvelopeSerializer(envelope).data, status=status.HTTP_202_ACCEPTED)
