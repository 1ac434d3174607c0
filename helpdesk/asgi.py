"""The ASGI entry point (uvicorn): HTTP goes to Django's WSGI handler on one long-lived thread.

Django's own ASGI handler runs every request's sync code on a new thread, so with psycopg2 each
request opened a fresh PostgreSQL connection (~20 ms a request here; bench/RESULTS.md). asgiref's
WsgiToAsgi runs the same Django app on its one thread-sensitive thread, where CONN_MAX_AGE keeps the
connection: a worker process serves one request at a time, like gunicorn's sync workers, and scales
with `--workers`. WebSocket routes (live updates) are added beside "http" when they arrive.
"""

import asyncio
import contextvars
import os

from asgiref.wsgi import WsgiToAsgi
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

django_http = WsgiToAsgi(get_wsgi_application())


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "http":
        # A fresh context per request: asgiref keeps its executor in a context variable, and one left
        # over from the previous request on a keep-alive connection made the next one fail.
        await asyncio.create_task(django_http(scope, receive, send), context=contextvars.Context())
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    else:
        raise ValueError(f"Unsupported ASGI scope type {scope['type']!r}")
