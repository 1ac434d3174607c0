"""The realtime service's ASGI application: WebSockets, plus GET /healthz for the container's health check.

Every other HTTP request gets 404: pages and the API are the web tier's (gunicorn), and a reverse proxy sends
only /ws/ here.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path, re_path

from helpdesk import health
from realtime.consumers import NoSuchStream, TicketEventStream

websocket_routes = URLRouter(
    [
        path("ws/events/", TicketEventStream.as_asgi()),
        re_path(r"", NoSuchStream.as_asgi()),
    ]
)


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    client = (scope.get("client") or ("", 0))[0]
    inside = health.from_inside(
        client, (name.decode("latin-1").lower() for name, _ in scope.get("headers", []))
    )
    if scope["path"] == health.PATH and scope["method"] in ("GET", "HEAD") and inside:
        healthy, checks = await database_sync_to_async(health.health_report)(("database", "realtime"))
        status, body = (200 if healthy else 503), {"status": "ok" if healthy else "failing", "checks": checks}
    else:
        status, body = 404, {"detail": "Not found."}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter({"websocket": websocket_routes, "http": http, "lifespan": lifespan})
