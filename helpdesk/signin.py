"""Signing in against password guessing: who the client is behind the reverse proxy, the locked-out answer.

django-axes does the counting (settings.py, AXES_*): its backend refuses a locked client address or account
inside Django's authenticate(), and its user_login_failed receiver stores each failure in PostgreSQL. So the
API token endpoint, the admin login and any Django auth view share one lockout, and none needs Redis.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import timedelta
from functools import cache
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: HttpRequest) -> str | None:
    """The address a sign-in is counted against (AXES_CLIENT_IP_CALLABLE).

    The peer's own address, unless the peer is one of TRUSTED_PROXIES: then X-Forwarded-For is read from the
    right, where each proxy appended the address it got the request from, up to the first hop that is not a
    trusted proxy. What lies left of that is the client's own word: a made-up address there changes nothing.
    """
    address = _parse(request.META.get("REMOTE_ADDR", ""))
    if address is None:
        return None
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        if not _is_trusted_proxy(address):
            break
        forwarded = _parse(hop)
        if forwarded is None:
            break
        address = forwarded
    return str(address)


def seconds_until_unlocked(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    """When the lockout of this client address or account ends: a cool-off after its latest counted failure.

    Failures made while locked out are counted too (django-axes' default), so guessing on keeps it locked.
    """
    cool_off = get_cool_off(request) or timedelta(0)
    limit = get_failure_limit(request, credentials)
    ends = timezone.now()
    for attempts in AxesProxyHandler.get_implementation().get_user_attempts(request, credentials):
        counted = attempts.aggregate(failures=Sum("failures_since_start"), latest=Max("attempt_time"))
        if (counted["failures"] or 0) >= limit:
            ends = max(ends, counted["latest"] + cool_off)
    return max(1, math.ceil((ends - timezone.now()).total_seconds()))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """A sign-in page's answer to a lockout (AXES_LOCKOUT_CALLABLE: the admin, Django's auth views): 429 and
    when to try again. The API token endpoint answers its own 429 (tickets.api.tokens)."""
    wait = seconds_until_unlocked(request, credentials)
    response = render(request, "signin_locked.html", {"minutes": math.ceil(wait / 60)}, status=429)
    response["Retry-After"] = str(wait)
    return response


def locked_out_detail() -> str:
    return _(
        "Too many failed sign-ins from this address or for this account. Signing in is locked for a while."
    )


def _parse(value: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; it is the same client as a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted_proxy(address: IPAddress) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


@cache
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)
