"""helpdesk.embedded: which servers `make run` and `make test` use, and the embedded ones for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import environ
import psycopg2
import pytest
import redis
from kombu import Connection

from helpdesk.embedded import (
    MACHINE_DATABASE_URL,
    MACHINE_REDIS_URL,
    EmbeddedRedis,
    celery_broker_url,
    child_environment,
    choose_database_url,
    choose_redis_url,
    embedded_postgres,
)

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = None  # the decision's way of saying "start an embedded server"


class Probe:
    """A stand-in for the TCP/PING probe that remembers whether it was asked."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.asked = False

    def __call__(self) -> bool:
        self.asked = True
        return self.answers


@pytest.mark.parametrize(
    ("env", "mode", "machine_answers", "expected", "probed"),
    [
        ({"DATABASE_URL": "postgres://u@db:5432/x"}, "run", True, "postgres://u@db:5432/x", False),
        ({"DATABASE_URL": "postgres://u@db:5432/x"}, "test", True, "postgres://u@db:5432/x", False),
        ({}, "test", True, MACHINE_DATABASE_URL, True),
        ({}, "test", False, EMBEDDED, True),
        ({"DATABASE_URL": ""}, "test", False, EMBEDDED, True),
        # make run never uses the machine's server, even when it answers.
        ({}, "run", True, EMBEDDED, False),
        ({}, "run", False, EMBEDDED, False),
    ],
)
def test_choose_database_url(env, mode, machine_answers, expected, probed):
    probe = Probe(machine_answers)
    assert choose_database_url(env, mode, probe) == expected
    assert probe.asked == probed


@pytest.mark.parametrize(
    ("env", "mode", "machine_answers", "expected", "probed"),
    [
        ({"REDIS_URL": "redis://cache:6379/1"}, "run", True, "redis://cache:6379/1", False),
        ({"REDIS_URL": "redis://cache:6379/1"}, "test", False, "redis://cache:6379/1", False),
        ({}, "test", True, MACHINE_REDIS_URL, True),
        ({}, "test", False, EMBEDDED, True),
        ({}, "run", True, EMBEDDED, False),
    ],
)
def test_choose_redis_url(env, mode, machine_answers, expected, probed):
    probe = Probe(machine_answers)
    assert choose_redis_url(env, mode, probe) == expected
    assert probe.asked == probed


@pytest.mark.parametrize(
    ("redis_url", "broker_url"),
    [
        ("unix:///srv/var/redis/redis.sock?db=0", "redis+socket:///srv/var/redis/redis.sock"),
        ("unix:///srv/redis.sock", "redis+socket:///srv/redis.sock"),
        ("unix:///srv/redis.sock?db=3", "redis+socket:///srv/redis.sock?virtual_host=3"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("rediss://:secret@cache:6380/2", "rediss://:secret@cache:6380/2"),
    ],
)
def test_celery_broker_url_spells_a_unix_socket_the_kombu_way(redis_url, broker_url):
    assert celery_broker_url(redis_url) == broker_url


def test_child_environment_exports_both_urls_and_the_broker_for_a_unix_socket():
    child_env = child_environment({"HOME": "/root"}, "postgres://db/helpdesk", "unix:///s/redis.sock?db=0")
    assert child_env == {
        "HOME": "/root",
        "DATABASE_URL": "postgres://db/helpdesk",
        "REDIS_URL": "unix:///s/redis.sock?db=0",
        "CELERY_BROKER_URL": "redis+socket:///s/redis.sock",
    }


def test_child_environment_does_not_pin_the_default_settings_module():
    # Importing the helpdesk package sets it; passed on, it would override pytest.ini's test settings.
    assert "DJANGO_SETTINGS_MODULE" not in child_environment(
        {"DJANGO_SETTINGS_MODULE": "helpdesk.settings"}, "postgres://db/x", "redis://127.0.0.1:6379/0"
    )
    other = {"DJANGO_SETTINGS_MODULE": "helpdesk.settings_test"}
    assert child_environment(other, "postgres://db/x", "redis://r/0")["DJANGO_SETTINGS_MODULE"] == (
        "helpdesk.settings_test"
    )


def test_child_environment_leaves_a_tcp_redis_and_an_explicit_broker_alone():
    assert "CELERY_BROKER_URL" not in child_environment({}, "postgres://db/x", "redis://127.0.0.1:6379/0")
    explicit = {"CELERY_BROKER_URL": "redis://broker:6379/0"}
    assert child_environment(explicit, "postgres://db/x", "unix:///s.sock")["CELERY_BROKER_URL"] == (
        "redis://broker:6379/0"
    )


@pytest.fixture
def embedded_redis_server(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", persistent=False)
    server.start()
    yield server
    server.stop()


def test_embedded_redis_answers_ping_on_its_unix_socket(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", persistent=False)
    server.start()
    process = server._process
    try:
        assert server.url.startswith("unix://")
        assert redis.Redis.from_url(server.url).ping() is True
    finally:
        server.stop()
    assert process is not None and process.poll() is not None
    assert not Path(server.socket_path).exists()


def test_celery_broker_url_reaches_the_embedded_redis(embedded_redis_server):
    with Connection(celery_broker_url(embedded_redis_server.url)) as connection:
        queue = connection.SimpleQueue("embedded-check")
        queue.put({"ticket": 42})
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.payload == {"ticket": 42}


def test_embedded_postgres_creates_the_helpdesk_database_and_stops(tmp_path):
    pgdata = tmp_path / "postgres"
    started = time.monotonic()
    with embedded_postgres(pgdata) as url:
        assert time.monotonic() - started < 30
        assert environ.Env.db_url_config(url)["NAME"] == "helpdesk"
        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            assert cursor.fetchone() == ("helpdesk",)
        conn.close()
        assert (pgdata / "postmaster.pid").exists()
    # pg_ctl stop -w returns once the server has removed its pid file.
    assert not (pgdata / "postmaster.pid").exists()


def launcher(*command: str) -> list[str]:
    return [sys.executable, "-m", "helpdesk.embedded", "exec", "--mode", "test", "--", *command]


def given_servers() -> dict[str, str]:
    """URLs set in the environment: the launcher starts nothing and only passes them on."""
    return {**os.environ, "DATABASE_URL": "postgres://given/db", "REDIS_URL": "redis://given:6379/0"}


def test_exec_passes_the_urls_and_returns_the_child_exit_code():
    check = "import os, sys; sys.exit(3 if os.environ['DATABASE_URL'] == 'postgres://given/db' else 1)"
    result = subprocess.run(launcher(sys.executable, "-c", check), cwd=REPO, env=given_servers(), timeout=60)
    assert result.returncode == 3


def test_exec_forwards_sigterm_to_the_child():
    sleeper = "import time; print('ready', flush=True); time.sleep(60)"
    process = subprocess.Popen(
        launcher(sys.executable, "-c", sleeper), cwd=REPO, env=given_servers(), stdout=subprocess.PIPE
    )
    try:
        assert process.stdout.readline() == b"ready\n"
        process.send_signal(signal.SIGTERM)
        # The child dies of the forwarded SIGTERM; the launcher reports it the way a shell does.
        assert process.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.stdout.close()
