"""The web tier's side of the realtime service: a socket token for clients that cannot use the session."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime import tokens

STREAM_PATH = "/ws/events/"


def stream_url(request: Request) -> str:
    """Where to open the event stream: REALTIME_URL, else this site's own origin (a proxy routes /ws/)."""
    if settings.REALTIME_URL:
        return settings.REALTIME_URL.rstrip("/") + STREAM_PATH
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{STREAM_PATH}"


class SocketTokenApi(APIView):
    """A token that opens the live event stream (`?token=` in its URL) within REALTIME_TOKEN_MAX_AGE s."""

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "SocketToken",
            {
                "token": serializers.CharField(),
                "expires_in": serializers.IntegerField(),
                "url": serializers.CharField(),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        return Response(
            {
                "token": tokens.issue(request.user),
                "expires_in": settings.REALTIME_TOKEN_MAX_AGE,
                "url": stream_url(request),
            }
        )
