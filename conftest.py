"""The fixed cast every test shares, row factories, and the captured_events fixture."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from helpdesk import events
from tickets.channels import InboundMessage
from tickets.models import Channel, Customer, Identity, Role, Team, User

_sequence = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_sequence)}"


@pytest.fixture
def billing(db) -> Team:
    return Team.objects.create(name="Billing")


@pytest.fixture
def tech(db) -> Team:
    return Team.objects.create(name="Tech")


@pytest.fixture
def alice(billing) -> User:
    """Agent in Billing."""
    user = User.objects.create_user("alice", "alice@support.test", "pw", role=Role.AGENT, first_name="Alice")
    billing.members.add(user)
    return user


@pytest.fixture
def bob(tech) -> User:
    """Agent in Tech, another team than alice's."""
    user = User.objects.create_user("bob", "bob@support.test", "pw", role=Role.AGENT, first_name="Bob")
    tech.members.add(user)
    return user


@pytest.fixture
def carol(db) -> User:
    """Supervisor: sees every ticket."""
    return User.objects.create_user("carol", "carol@support.test", "pw", role=Role.SUPERVISOR)


@pytest.fixture
def dave(db) -> User:
    """Admin."""
    return User.objects.create_user("dave", "dave@support.test", "pw", role=Role.ADMIN, is_staff=True)


@pytest.fixture
def ivan(db) -> Customer:
    """Customer with an email identity and a portal login."""
    login = User.objects.create_user("ivan", "ivan@customer.test", "pw", role=Role.CUSTOMER)
    customer = Customer.objects.create(name="Иван Петров", locale="ru", user=login)
    Identity.objects.create(customer=customer, channel=Channel.EMAIL, address="ivan@customer.test")
    return customer


def inbound_message(**overrides: Any) -> InboundMessage:
    """An inbound email from ivan unless told otherwise; each call a new external id."""
    fields: dict[str, Any] = {
        "channel": Channel.EMAIL,
        "external_id": f"<{unique('msg')}@customer.test>",
        "sender_address": "ivan@customer.test",
        "sender_name": "Иван Петров",
        "subject": "Не приходит счёт",
        "text": "Здравствуйте, где мой счёт?",
    }
    fields.update(overrides)
    return InboundMessage(**fields)


@pytest.fixture
def api_client():
    def client_for(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


class CapturedEvents:
    """Domain events published after commit, and the batches each subscriber task was sent.

    Tests run inside a transaction that never commits, so reading these first runs the on-commit
    callbacks queued since the last read, as a commit would.
    """

    def __init__(self) -> None:
        self._published: list[dict[str, Any]] = []
        self._sent: list[tuple[str, list[dict[str, Any]]]] = []
        self._ran = len(connection.run_on_commit)

    def _run_commit_callbacks(self) -> None:
        while self._ran < len(connection.run_on_commit):
            _savepoints, callback, _robust = connection.run_on_commit[self._ran]
            self._ran += 1
            callback()

    @property
    def published(self) -> list[dict[str, Any]]:
        self._run_commit_callbacks()
        return self._published

    @property
    def sent(self) -> list[tuple[str, list[dict[str, Any]]]]:
        self._run_commit_callbacks()
        return self._sent

    @property
    def names(self) -> list[str]:
        return [payload["name"] for payload in self.published]


@pytest.fixture
def captured_events(db, monkeypatch) -> CapturedEvents:
    """Records published events and subscriber batches instead of sending them to Redis."""
    captured = CapturedEvents()
    real_publish = events.publish

    def publish(payloads: list[dict[str, Any]]) -> None:
        captured._published.extend(payloads)
        real_publish(payloads)

    monkeypatch.setattr(events, "publish", publish)
    monkeypatch.setattr(
        events, "send_to_subscriber", lambda path, batch: captured._sent.append((path, batch))
    )
    return captured
