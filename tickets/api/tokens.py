"""API tokens: signing in for one, seeing it, revoking it. A password change revokes it too (User.save)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from tickets.api.schema import ERROR_REF


class TokenLoginApi(ObtainAuthToken):
    """Username and password for an API token; rate-limited per client against password guessing."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"


class CurrentTokenApi(APIView):
    """Your API token: when it was made and how it ends (never the whole key), or revoke it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: inline_serializer(
                "ApiToken", {"created": serializers.DateTimeField(), "ends_with": serializers.CharField()}
            ),
            404: OpenApiResponse(ERROR_REF, description="You have no API token."),
        }
    )
    def get(self, request: Request) -> Response:
        token = Token.objects.filter(user=request.user).first()
        if token is None:
            return Response({"detail": "You have no API token."}, status=status.HTTP_404_NOT_FOUND)
        return Response({"created": token.created, "ends_with": token.key[-4:]})

    @extend_schema(responses={204: None})
    def delete(self, request: Request) -> Response:
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
