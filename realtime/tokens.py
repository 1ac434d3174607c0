"""Short-lived socket tokens: the web tier signs one for a signed-in agent; the realtime service checks it.

For clients that cannot send the session cookie to the realtime origin (API clients, another port in
development). A token names the user and a digest of their session hash, so a password change voids it.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core import signing

from tickets.models import User

SALT = "realtime.socket-token"
MAX_LENGTH = 512


def _password_digest(user: User) -> str:
    return hashlib.sha256(user.get_session_auth_hash().encode()).hexdigest()[:16]


def issue(user: User) -> str:
    return signing.dumps({"user": user.pk, "auth": _password_digest(user)}, salt=SALT)


def user_for_token(token: str) -> User | None:
    """The active user the token was issued to, or None: forged, expired, malformed or revoked."""
    if not token or len(token) > MAX_LENGTH:
        return None
    try:
        claims = signing.loads(token, salt=SALT, max_age=settings.REALTIME_TOKEN_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("user"), int):
        return None
    user = User.objects.filter(pk=claims["user"], is_active=True).first()
    if user is None or claims.get("auth") != _password_digest(user):
        return None
    return user
