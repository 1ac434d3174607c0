from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from tickets import replies, selectors
from tickets.api.schema import CONFLICT
from tickets.api.serializers import MessageSerializer
from tickets.models import Status


class MessageInput(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, default="", max_length=100_000)
    html = serializers.CharField(required=False, allow_blank=True, default="", max_length=500_000)

    def validate(self, attrs):
        if not attrs["text"].strip() and not attrs["html"].strip():
            raise serializers.ValidationError({"text": ["The message is empty."]})
        return attrs


class TicketReplyApi(APIView):
    """Answer the customer on the ticket's channel; delivery happens in the background."""

    class ReplyInput(MessageInput):
        status = serializers.ChoiceField(choices=Status.choices, required=False)
        seen_message_id = serializers.IntegerField(
            required=False,
            min_value=1,
            help_text="The newest message on the agent's screen; newer customer messages or other agents' "
            "replies make the answer 409 stale_reply, with their ids in `arrived`.",
        )
        confirm = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Send even though messages arrived (after a stale_reply).",
        )

        def validate_status(self, status: str) -> str:
            if status in (Status.NEW, Status.CLOSED):
                raise serializers.ValidationError(
                    "A reply can leave the ticket open, pending, on hold or solved."
                )
            return status

    @extend_schema(request=ReplyInput, responses={201: MessageSerializer, 409: CONFLICT})
    def post(self, request, ticket_id: int):
        ticket = selectors.ticket_for_agent(request.user, ticket_id)
        data = self.ReplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        message = replies.send_reply(ticket, actor=request.user, confirmed=fields.pop("confirm"), **fields)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class TicketNoteApi(APIView):
    """An internal note, seen by agents only."""

    @extend_schema(request=MessageInput, responses={201: MessageSerializer})
    def post(self, request, ticket_id: int):
        ticket = selectors.ticket_for_agent(request.user, ticket_id)
        data = MessageInput(data=request.data)
        data.is_valid(raise_exception=True)
        message = replies.add_note(ticket, actor=request.user, **data.validated_data)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)
