"""tickets.tasks: the thin Celery tasks, run in-process against the real broker."""

import pytest
import redis
from django.conf import settings as django_settings

from conftest import inbound_message
from tickets import inbound, replies
from tickets.models import Channel, DeliveryStatus, Message
from tickets.tasks import deliver_message

pytestmark = pytest.mark.django_db


def waiting_in(queue: str) -> int:
    return redis.Redis.from_url(django_settings.REDIS_URL).llen(queue)


@pytest.fixture
def reply(ivan, alice, settings) -> Message:
    settings.DELIVER_TO_LOG = False
    ticket = inbound.receive(inbound_message()).ticket
    return replies.send_reply(ticket, actor=alice, text="Счёт отправлен повторно.")


@pytest.mark.parametrize(
    ("adapter", "countdowns"),
    [
        ("TemporarilyDownAdapter", 1),  # tried again in 15 s: a countdown task
        ("RateLimitedAdapter", 0),  # in 120 s, past this visibility timeout: retry_due_deliveries' turn
    ],
)
def test_a_delivery_retry_waits_in_the_broker_only_within_the_visibility_timeout(
    reply, celery_queue, settings, adapter, countdowns
):
    settings.CHANNEL_ADAPTERS = {Channel.EMAIL: f"tickets.tests.test_replies.{adapter}"}
    settings.CELERY_VISIBILITY_TIMEOUT = 100

    assert deliver_message(reply.pk) == replies.Outcome.RETRY.value

    assert Message.objects.get(pk=reply.pk).delivery_status == DeliveryStatus.QUEUED
    assert waiting_in(celery_queue) == countdowns
