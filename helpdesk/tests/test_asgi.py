"""The ASGI application answers HTTP through Django and completes the lifespan handshake."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator

from helpdesk.asgi import application

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def http_get(path: str) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
    }


@pytest.mark.anyio
async def test_http_request_reaches_django():
    communicator = ApplicationCommunicator(application, http_get("/health/"))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})

    start = await communicator.receive_output(timeout=10)
    body = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)

    assert start["status"] == 200
    assert json.loads(body["body"]) == {"status": "ok"}


@pytest.mark.anyio
async def test_requests_run_on_reused_threads_not_one_new_thread_each(monkeypatch):
    # Persistent database connections are per thread: a new thread per request means a new connection.
    seen: set[int] = set()
    from helpdesk import asgi

    def remember_thread(environ, start_response):
        seen.add(threading.get_ident())
        start_response("204 No Content", [])
        return [b""]

    monkeypatch.setattr(asgi.django_http, "wsgi_application", remember_thread)
    for _ in range(20):
        communicator = ApplicationCommunicator(application, http_get("/"))
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        assert (await communicator.receive_output(timeout=10))["status"] == 204
        await communicator.receive_output(timeout=10)
        await communicator.wait(timeout=10)

    assert len(seen) < 20


@pytest.mark.anyio
async def test_lifespan_startup_and_shutdown_complete():
    communicator = ApplicationCommunicator(application, {"type": "lifespan"})

    await communicator.send_input({"type": "lifespan.startup"})
    assert await communicator.receive_output(timeout=5) == {"type": "lifespan.startup.complete"}
    await communicator.send_input({"type": "lifespan.shutdown"})
    assert await communicator.receive_output(timeout=5) == {"type": "lifespan.shutdown.complete"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_uvicorn_serves_many_requests_on_one_keep_alive_connection():
    # Back-to-back requests on one connection once failed inside asgiref (a leftover executor).
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "helpdesk.settings_test"}
    command = [sys.executable, "-m", "uvicorn", "helpdesk.asgi:application", "--port", str(port)]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.connect()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "uvicorn did not start"
                time.sleep(0.1)
        statuses = []
        for _ in range(60):
            connection.request("GET", "/health/", headers={"Host": "localhost"})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)

    assert statuses == [200] * 60, output.decode(errors="replace")[-3000:]
