"""The realtime service's entry point (uvicorn): WebSockets only, with Django Channels on Redis.

    uvicorn helpdesk.asgi:application --port 8001

HTTP (pages, API, webhooks) is the web tier's: gunicorn with threads runs helpdesk/wsgi.py. Here each database
call closes its connection when done (CONN_MAX_AGE=0), so thousands of idle sockets hold no PostgreSQL
connection; the routes are in realtime/routing.py.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
os.environ.setdefault("CONN_MAX_AGE", "0")
os.environ.setdefault("DATABASE_APPLICATION_NAME", "helpdesk-realtime")
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "10s")

import django

django.setup()

from realtime.routing import application  # noqa: E402

__all__ = ["application"]
