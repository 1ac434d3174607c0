"""The fixed cast every test shares, row factories, and the captured_events fixture."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from rest_framework.test import APIClient

from helpdesk import events
from tickets.channels import InboundMessage
from tickets.models import Channel, Customer, Identity, Role, Team, User

_sequence = itertools.count(1)
REPO = Path(__file__).resolve().parent


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


def api_channel_message(**overrides: Any) -> dict[str, Any]:
    """A message as an integration pushes it to POST /api/v1/inbound/messages/ (the API channel)."""
    message = {
        "id": "crm-4711",
        "customer": {"id": "crm-customer-42", "name": "Ivan Petrov", "locale": "ru"},
        "subject": "Order not delivered",
        "text": "Where is my order?",
        "thread_key": "order-1009",
    }
    message.update(overrides)
    return message


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
        events, "send_to_subscriber", lambda path, batch, batch_id: captured._sent.append((path, batch))
    )
    return captured


# Real servers (gunicorn, uvicorn, Celery) started by tests, against this run's test database.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url_for_tests() -> str:
    """DATABASE_URL (TCP or the embedded server's socket) pointed at this run's test database."""
    configured = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/helpdesk"))
    return urlunsplit(configured._replace(path="/" + connection.settings_dict["NAME"]))


def server_environment(**overrides: str) -> dict[str, str]:
    from django.conf import settings

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings_test",
        "DATABASE_URL": database_url_for_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "TEST_CHANNEL_LAYER_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        **overrides,
    }


@contextlib.contextmanager
def running_server(command: list[str], *, port: int, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """Start a server process, wait until GET /healthz answers on `port`, stop it afterwards.

    Its output goes to a file (a pipe nobody reads would fill and stall the server) and is printed at the
    end, so a failing test shows it.
    """
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, "the server exited"
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    probe.request("GET", "/healthz")
                    probe.getresponse().read()
                    probe.close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            yield server
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            output.seek(0)
            print(output.read().decode(errors="replace")[-5000:])


def gunicorn_command(port: int, *, workers: int = 1, threads: int = 4) -> list[str]:
    """The production web command (Procfile, docker-compose.yml) on a port of its own."""
    return [
        str(Path(sys.executable).parent / "gunicorn"),
        "helpdesk.wsgi:application",
        "--config",
        "helpdesk/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def realtime_command(port: int) -> list[str]:
    """The production realtime command on a port of its own."""
    return [
        str(Path(sys.executable).parent / "uvicorn"),
        "helpdesk.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws-max-size",
        "4096",
        "--no-access-log",
    ]


@pytest.fixture
def celery_queue() -> Iterator[str]:
    """A queue of this test's own, where everything the app sends meanwhile goes, so parallel runs never share
    tasks; deleted afterwards."""
    import redis
    from django.conf import settings

    from helpdesk.celery import app

    queue = f"test-{uuid.uuid4().hex[:12]}"
    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    yield queue
    app.conf.task_default_queue = default_queue
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete(queue)
    # Messages a killed worker held: another run's worker would put them back into this queue meanwhile.
    for tag, held in broker.hgetall("unacked").items():
        if json.loads(held)[2] == queue:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


@contextlib.contextmanager
def celery_worker_process(queue: str, **environment: str) -> Iterator[subprocess.Popen]:
    """A worker process of our app consuming `queue`, given these extra environment variables."""
    env = server_environment(CELERY_QUEUE=queue, DELIVER_TO_LOG="true", **environment)
    command = [sys.executable, "-m", "celery", "-A", "helpdesk", "worker", "-Q", queue, "--pool", "solo"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info"]
    with tempfile.TemporaryFile() as output:  # a pipe nobody reads would fill and stall the worker
        worker = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield worker
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:  # its task is stuck (a failed test's lock): do not wait on it
                worker.kill()
                worker.wait()
            output.seek(0)
            print(output.read().decode(errors="replace")[-5000:])


@pytest.fixture
def celery_worker(celery_queue) -> Iterator[subprocess.Popen]:
    """A worker process of our app consuming a queue of its own, so parallel runs never share tasks."""
    with celery_worker_process(celery_queue) as worker:
        yield worker
