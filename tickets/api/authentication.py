"""API token authentication with the lookup as one prepared statement.

DRF's TokenAuthentication builds `Token.objects.select_related("user").get(key=…)` through the ORM on every
request: a fifth of an inbound API call's CPU (bench/RESULTS.md, issue 14). The same join, prepared once per
connection, costs a round trip and a row conversion; the checks and the answers are DRF's own.
"""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from tickets.models import User
from tickets.rows import Prepared, columns, load


class TokenAuthentication(authentication.TokenAuthentication):
    """`request.auth` is a Token holding the key and user only (not read back: nothing uses its `created`)."""

    def authenticate_credentials(self, key: str) -> tuple[User, Token]:
        with connection.cursor() as cursor:
            _token_owner_sql().execute(cursor, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = load(User, row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)


@cache
def _token_owner_sql() -> Prepared:
    quote = connection.ops.quote_name
    return Prepared(
        f"SELECT {columns(User, 'u')} FROM {quote(User._meta.db_table)} u "  # noqa: S608 - quoted names
        f"JOIN {quote(Token._meta.db_table)} t ON t.user_id = u.id WHERE t.key = %s"
    )
