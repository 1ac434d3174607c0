"""GET /api/v1/search/?q=: the ticket search, one page of ticket list rows with the matching fragment."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from tickets import selectors
from tickets.api.serializers import TicketListRowSerializer
from tickets.search import MAX_QUERY_LENGTH, SearchPosition
from tickets.selectors import SearchHit


class TicketSearchHitSerializer(TicketListRowSerializer):
    """A ticket list row, plus where the query matched."""

    highlight = serializers.CharField(
        help_text="The matching fragment of the best-matching message (else the subject) as HTML: the text "
        "escaped, the matched words in <mark> elements."
    )

    class Meta(TicketListRowSerializer.Meta):
        fields = [*TicketListRowSerializer.Meta.fields, "highlight"]

    def to_representation(self, hit: SearchHit) -> dict:
        return {**super().to_representation(hit.ticket), "highlight": hit.highlight}


class TicketSearchPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page; null on the last.")
    results = TicketSearchHitSerializer(many=True)


class TicketSearchApi(APIView):
    """Tickets the caller may see that match `q`, best match first, newest activity first among equals.

    Searches ticket numbers (`1234`, `#1234`), subjects, every message's text and the customer's name,
    email, phone (any common format), Telegram id or @handle. Words match in Russian and English word forms
    («возврата» finds «возврат», "refunds" finds "refund"); quotes search a phrase, `or` either word, `-`
    excludes a word. Very frequent words rank among their newest matches.
    """

    class SearchInput(serializers.Serializer):
        # CharField refuses NUL characters and, once trimmed, an empty query.
        q = serializers.CharField(max_length=MAX_QUERY_LENGTH, help_text="What to search for.")
        cursor = serializers.CharField(required=False, help_text="From `next` of the previous page.")
        limit = serializers.IntegerField(min_value=1, max_value=100, default=25)

        def validate_cursor(self, cursor: str) -> SearchPosition:
            try:
                return SearchPosition.decode(cursor)
            except ValueError:
                raise serializers.ValidationError("Not a cursor this search gave.") from None

    @extend_schema(parameters=[SearchInput], responses=TicketSearchPageSerializer)
    def get(self, request: Request) -> Response:
        data = self.SearchInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        page = selectors.search_tickets(
            request.user,
            data.validated_data["q"],
            after=data.validated_data.get("cursor"),
            limit=data.validated_data["limit"],
        )
        next_url = None
        if page.next_position is not None:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", page.next_position.encode()
            )
        return Response({"next": next_url, "results": TicketSearchHitSerializer(page.hits, many=True).data})
