"""Who is on the other end of a socket, and what they may subscribe to. Runs in the realtime process.

An agent proves who they are with their session cookie (the browser on the workspace's own origin; the
Origin header must then be one of ours, against cross-site socket hijacking) or with a short-lived token
from the web tier (`realtime.tokens`). Customers, visitors and everyone else are refused for now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib import auth
from django.http import Http404
from django.http.cookie import parse_cookie

from realtime import tokens
from realtime.audience import groups_for_agent, ticket_group
from tickets import selectors
from tickets.models import User

MAX_QUERY_STRING = 2048
_SESSION_KEY = re.compile(r"[a-z0-9]{32}")
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class StreamRequest:
    """What a client asked for in the socket URL: ?token=…&ticket=…&last_event_id=…"""

    token: str = ""
    ticket_id: int | None = None
    last_event_id: int | None = None

    @classmethod
    def from_query_string(cls, raw: bytes) -> StreamRequest | None:
        """The request, or None when the query string is malformed (then the socket is refused)."""
        if len(raw) > MAX_QUERY_STRING:
            return None
        try:
            query = parse_qs(raw.decode("ascii"), strict_parsing=False, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            return None
        if any(len(values) > 1 for values in query.values()):
            return None
        try:
            ticket_id = _id_or_none(query, "ticket")
            last_event_id = _id_or_none(query, "last_event_id", allow_zero=True)
        except ValueError:
            return None
        return cls(token=query.get("token", [""])[0], ticket_id=ticket_id, last_event_id=last_event_id)


def _id_or_none(query: dict[str, list[str]], name: str, *, allow_zero: bool = False) -> int | None:
    if name not in query:
        return None
    value = query[name][0]
    if not value.isascii() or not value.isdigit():
        raise ValueError(name)
    number = int(value)
    if not (0 if allow_zero else 1) <= number <= _MAX_ID:
        raise ValueError(name)
    return number


@dataclass(frozen=True)
class Subscription:
    agent: User
    groups: list[str]
    ticket_id: int | None


def subscribe(scope: dict[str, Any], request: StreamRequest) -> Subscription | None:
    """The agent's subscription, or None when the socket must be refused. Sync: it reads the database."""
    agent = agent_for_socket(scope, request.token)
    if agent is None or not agent.is_agent:
        return None
    if request.ticket_id is None:
        return Subscription(agent, groups_for_agent(agent), None)
    subscription = Subscription(agent, [ticket_group(request.ticket_id)], request.ticket_id)
    return subscription if still_visible(subscription) else None


def still_visible(subscription: Subscription) -> bool:
    """May the agent see the one ticket this stream carries? The API's own check: missing or forbidden, no."""
    try:
        selectors.ticket_for_agent(subscription.agent, subscription.ticket_id)
    except Http404:
        return False
    return True


def agent_for_socket(scope: dict[str, Any], token: str) -> User | None:
    if token:
        return tokens.user_for_token(token)
    headers = _headers(scope)
    if not origin_is_ours(headers.get("origin", "")):
        return None
    session_key = parse_cookie(headers.get("cookie", "")).get(settings.SESSION_COOKIE_NAME, "")
    if not _SESSION_KEY.fullmatch(session_key):  # Django's own keys; anything else never reaches the store
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    user = auth.get_user(_SessionOnly(session))  # Django's own checks, session hash included
    return user if user.is_authenticated else None


class _SessionOnly:
    """What `django.contrib.auth.get_user` reads of a request: its session."""

    def __init__(self, session: Any) -> None:
        self.session = session


def origin_is_ours(origin: str) -> bool:
    """The page that opened the socket is ours: an origin in CSRF_TRUSTED_ORIGINS, or one whose host is
    named exactly in ALLOWED_HOSTS (wildcards such as `*` or `.example.com` do not count: another site or a
    sibling subdomain must not ride on an agent's cookie), over HTTPS unless DEBUG."""
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme != "https" and not (settings.DEBUG and parts.scheme == "http"):
        return False
    exact_hosts = {
        name.lower() for name in settings.ALLOWED_HOSTS if name != "*" and not name.startswith(".")
    }
    return bool(host) and host in {name.strip("[]") for name in exact_hosts}


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])
    }
