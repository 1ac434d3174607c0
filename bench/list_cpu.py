"""CPU per ticket-list request, in-process through Django's test client: the request's own cost, which a
machine shared with other work hardly moves (wall-clock p95 through gunicorn does).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/helpdesk_bench .venv/bin/python -m bench.list_cpu

Run it from two checkouts alternately to compare commits side by side.
"""

from __future__ import annotations

import os
import statistics
import time

PATHS = ("/api/v1/tickets/", "/api/v1/tickets/?status=open")


def main(requests: int = 200, warmup: int = 20) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.update(ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="false")
    import django

    django.setup()
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from tickets.models import Role, User

    for role in (Role.ADMIN, Role.AGENT):
        user = User.objects.filter(role=role, is_active=True).order_by("id").first()
        token, _ = Token.objects.get_or_create(user=user)
        client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
        for path in PATHS:
            for _ in range(warmup):
                client.get(path)
            cpu = []
            for _ in range(requests):
                started = time.process_time()
                response = client.get(path)
                cpu.append(time.process_time() - started)
                if response.status_code != 200:
                    raise SystemExit(f"{path} as {role}: {response.status_code}")
            print(f"{role:6} {path:32} {statistics.median(cpu) * 1000:.2f} ms CPU (median of {requests})")


if __name__ == "__main__":
    main()
