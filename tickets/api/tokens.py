"""API tokens: signing in for one, seeing it, revoking it. A password change revokes it too (User.save)."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk import signin
from tickets.api.schema import ERROR_REF


class TokenLoginSerializer(AuthTokenSerializer):
    # No longer than a username can be: a longer one is a 400 here, not a failure too long to record.
    username = serializers.CharField(
        label=AuthTokenSerializer._declared_fields["username"].label,
        write_only=True,
        max_length=get_user_model()._meta.get_field("username").max_length,
    )


class TokenLoginApi(ObtainAuthToken):
    """Username and password for an API token.

    Against password guessing, django-axes locks a client address or an account after repeated failures
    (helpdesk.signin): the password is then not even checked, and the answer is 429 with Retry-After.
    """

    serializer_class = TokenLoginSerializer
    # No DRF throttle: the lockout answers 429 (tickets.api.schema documents it from this).
    locks_out = True

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # django-axes marks the request it refused or has just locked; the API says so with DRF's 429.
            if getattr(request, "axes_locked_out", False):
                wait = signin.seconds_until_unlocked(request, request.axes_credentials)
                raise Throttled(wait=wait, detail=signin.locked_out_detail()) from None
            raise


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
