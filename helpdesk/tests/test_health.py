"""GET /healthz: every dependency checked for real; 503 naming what fails; only from inside the network."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import inbound_message
from helpdesk.celery import app
from helpdesk.health import CHECKS, check_realtime_layer, run_check
from tickets import inbound
from tickets.models import Channel, EnvelopeStatus, InboundEnvelope, SubscriberBatch, TicketEvent

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def health(client, **extra):
    response = client.get("/healthz", **extra)
    return response.status_code, response.json() if response["Content-Type"] == "application/json" else None


def failing(body: dict) -> set[str]:
    return {name for name, check in body["checks"].items() if check["status"] != "ok"}


def test_a_healthy_deployment_answers_200_with_every_check(client):
    status, body = health(client)

    assert status == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == set(CHECKS)
    assert failing(body) == set()
    assert body["checks"]["outbox"]["unpublished_over_a_minute"] == 0


def test_events_left_unpublished_for_over_a_minute_fail_the_outbox_check(client, settings, monkeypatch):
    settings.HEALTH_MAX_OUTBOX_BACKLOG = 1
    with monkeypatch.context() as dead_publisher:
        dead_publisher.setattr("helpdesk.events.publish_on_commit", lambda new_events: None)
        inbound.receive(inbound_message())
    assert health(client)[0] == 200, "fresh events are still their publisher's"

    TicketEvent.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    status, body = health(client)

    assert status == 503
    assert failing(body) == {"outbox"}
    assert body["checks"]["outbox"]["unpublished_over_a_minute"] == 2


def test_a_failed_envelope_is_a_warning_that_keeps_the_answer_200(client):
    # A stranger's malformed message must not take every web container out of the load balancer.
    InboundEnvelope.objects.create(
        channel=Channel.API, external_id="broken-1", payload=b"{}", status=EnvelopeStatus.FAILED, error="boom"
    )

    status, body = health(client)

    assert status == 200
    assert body["checks"]["envelopes"] == {"status": "warning", "failed": 1, "gave_up": 1, "limit": 0}
    assert "boom" not in str(body), "errors stay in the admin"


def test_subscriber_batches_resent_and_not_done_warn_and_unswept_ones_fail(client):
    event = TicketEvent.objects.create(
        ticket=inbound.receive(inbound_message()).ticket, name="ticket.updated"
    )
    retried = SubscriberBatch.objects.create(
        subscriber="tickets.tasks.record_customer_contact",
        event_ids=[event.pk],
        resend_at=timezone.now() + timedelta(minutes=10),
        sends=2,
    )

    status, body = health(client)
    assert status == 200
    assert body["checks"]["subscribers"] == {
        "status": "warning",
        "resent_not_done": 1,
        "overdue": 0,
        "limit": 0,
    }

    retried.resend_at = timezone.now() - timedelta(minutes=30)  # beat stopped sweeping
    retried.save()
    status, body = health(client)
    assert status == 503 and "subscribers" in failing(body)


def test_concurrent_probes_each_get_a_realtime_round_trip():
    results: list[dict] = []
    together = threading.Barrier(8)

    def probe() -> None:
        together.wait(timeout=10)
        results.append(run_check("realtime", check_realtime_layer))

    probes = [threading.Thread(target=probe) for _ in range(8)]
    for probe in probes:
        probe.start()
    for probe in probes:
        probe.join(timeout=30)

    assert [result["status"] for result in results] == ["ok"] * 8


def test_redis_the_broker_and_the_channel_layer_down_are_each_reported(client, settings, monkeypatch):
    settings.REDIS_URL = DEAD_REDIS
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [DEAD_REDIS]}}
    }
    monkeypatch.setattr(app.conf, "broker_url", DEAD_REDIS)

    status, body = health(client)

    assert status == 503
    assert failing(body) == {"redis", "broker", "realtime"}
    assert body["checks"]["broker"]["error"]


@pytest.mark.parametrize(
    "extra",
    [
        {"REMOTE_ADDR": "93.184.216.34"},  # a public client
        {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "93.184.216.34"},  # relayed by the proxy
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.5"},
        {"REMOTE_ADDR": "not an address"},
    ],
)
def test_the_health_check_is_not_served_outside_the_network(client, extra):
    assert client.get("/healthz", **extra).status_code == 404


def test_only_get_and_head_are_health_checks(client):
    assert client.post("/healthz").status_code == 404
    assert client.head("/healthz").status_code == 200
