"""GET /healthz: is this deployment able to take and answer messages? 200 when it is, else 503.

Checked: PostgreSQL, Redis, the Celery broker, the realtime channel layer (a message sent to a fresh channel
and read back) and the outbox backlog (domain events older than a minute still unpublished: the broker or
beat is down); any of them failing answers 503. Inbound envelopes that failed processing are counted too, as
a warning that does not change the answer: one malformed message from a stranger must not make probes take
every web container out of service. Of those, "gave_up" counts the ones whose automatic tries are spent: they
wait for someone to replay them. Subscriber batches sent again and still not done (a subscriber task that
keeps failing) are a warning in the same way; one overdue for its resend means beat is not sweeping: failing.

Served by a middleware placed first, so container health checks get an answer over plain HTTP whatever Host
they send (no HTTPS redirect, no ALLOWED_HOSTS). Only from inside the network: a client on a public address,
or any request that came through the reverse proxy (it adds X-Forwarded-For), gets the site's usual 404.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from tickets.models import EnvelopeStatus, InboundEnvelope, SubscriberBatch, TicketEvent
from tickets.tasks import REPUBLISH_AFTER

logger = logging.getLogger(__name__)

PATH = "/healthz"
TIMEOUT_SECONDS = 2.0
# Counting stops here: a huge backlog is reported as "more than", not counted row by row.
COUNT_CAP = 10_000

Check = dict[str, Any]


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_redis() -> Check:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()
    return {}


def check_broker() -> Check:
    from helpdesk.celery import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    return {}


async def realtime_round_trip() -> None:
    """Send a message through the channel layer to a fresh channel and read it back."""
    layer = get_channel_layer()
    channel = await layer.new_channel("health.")
    await layer.send(channel, {"type": "health.ping"})
    await asyncio.wait_for(layer.receive(channel), TIMEOUT_SECONDS)


# channels-redis refuses two event loops receiving at once; each web thread's async_to_sync brings its own.
_ONE_ROUND_TRIP_AT_A_TIME = threading.Lock()


def check_realtime_layer() -> Check:
    with _ONE_ROUND_TRIP_AT_A_TIME:
        async_to_sync(realtime_round_trip)()
    return {}


def _capped_count(rows: QuerySet) -> int:
    return rows.values("pk")[: COUNT_CAP + 1].count()


def _within(found: int, limit: int) -> str:
    return "ok" if found <= limit else "failing"


def check_outbox() -> Check:
    # The partial index event_unpublished holds exactly these rows.
    backlog = _capped_count(
        TicketEvent.objects.filter(published_at=None, created_at__lt=timezone.now() - REPUBLISH_AFTER)
    )
    limit = settings.HEALTH_MAX_OUTBOX_BACKLOG
    return {"status": _within(backlog, limit), "unpublished_over_a_minute": backlog, "limit": limit}


def check_envelopes() -> Check:
    # The partial index envelope_unfinished holds the pending and failed ones.
    failed = InboundEnvelope.objects.filter(status=EnvelopeStatus.FAILED)
    count = _capped_count(failed)
    gave_up = _capped_count(failed.filter(next_attempt_at=None)) if count else 0
    limit = settings.HEALTH_MAX_FAILED_ENVELOPES
    return {
        "status": "ok" if count <= limit else "warning",
        "failed": count,
        "gave_up": gave_up,
        "limit": limit,
    }


# The resend sweep runs every minute: a batch this far past its resend time was not swept.
SWEEP_OVERDUE = timedelta(minutes=5)


def check_subscribers() -> Check:
    stranded = _capped_count(SubscriberBatch.objects.filter(sends__gt=1))
    overdue = _capped_count(SubscriberBatch.objects.filter(resend_at__lt=timezone.now() - SWEEP_OVERDUE))
    limit = settings.HEALTH_MAX_STRANDED_BATCHES
    status = "failing" if overdue else "ok" if stranded <= limit else "warning"
    return {"status": status, "resent_not_done": stranded, "overdue": overdue, "limit": limit}


CHECKS: dict[str, Callable[[], Check]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
    "realtime": check_realtime_layer,
    "outbox": check_outbox,
    "envelopes": check_envelopes,
    "subscribers": check_subscribers,
}


def run_check(name: str, check: Callable[[], Check]) -> Check:
    try:
        return {"status": "ok", **check()}
    except Exception as error:  # a health check reports every failure, whatever its kind
        logger.warning("Health check %s failed: %r", name, error)
        return {"status": "failing", "error": type(error).__name__}


def health_report(names: Iterable[str] = tuple(CHECKS)) -> tuple[bool, dict[str, Check]]:
    """Run the named checks (all by default); healthy when none fails (a warning is still healthy)."""
    checks = {name: run_check(name, CHECKS[name]) for name in names}
    return all(check["status"] != "failing" for check in checks.values()), checks


def from_inside(client_address: str, header_names: Iterable[str]) -> bool:
    """A direct request from a loopback or private address, not one relayed by the reverse proxy (which
    adds X-Forwarded-For). `header_names` in lower case, with dashes."""
    if {"x-forwarded-for", "forwarded"} & set(header_names):
        return False
    try:
        address = ipaddress.ip_address(client_address)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        inside = from_inside(request.META.get("REMOTE_ADDR", ""), (name.lower() for name in request.headers))
        if request.path_info == PATH and request.method in ("GET", "HEAD") and inside:
            healthy, checks = health_report()
            response = JsonResponse({"status": "ok" if healthy else "failing", "checks": checks})
            response.status_code = 200 if healthy else 503
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)
