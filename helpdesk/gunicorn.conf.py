"""gunicorn settings for the web tier: every HTTP request (pages, API, webhooks) is served here.

    gunicorn helpdesk.wsgi:application --config helpdesk/gunicorn.conf.py

Threaded workers (`gthread`): a request waiting on PostgreSQL or burning CPU leaves the other threads of its
process serving. Each thread keeps its own persistent PostgreSQL connection (Django's connections are per
thread; CONN_MAX_AGE unset keeps them, CONN_HEALTH_CHECKS replaces a broken one), so a request never opens
one. Sized from the environment; the defaults fit the machine it starts on.
"""

import gc
import math
import os
from pathlib import Path


def available_cores() -> int:
    """The cores this process may use: its CPU set, and its container's CPU quota (cgroup v2) if any."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


# Processes: one per core is enough when each has threads to overlap database waits; at most 8 by default,
# since each thread holds a PostgreSQL connection. 0 or unset: the default.
workers = int(os.environ.get("WEB_CONCURRENCY") or 0) or min(available_cores(), 8)
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS") or 0) or 8
bind = os.environ.get("WEB_BIND") or "0.0.0.0:8000"

# A worker whose main loop stops answering for this long is killed and replaced.
timeout = int(os.environ.get("WEB_TIMEOUT") or 60)
graceful_timeout = 30
keepalive = 5
# Bound what one client can make us parse before Django's own limits apply.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# TLS ends at the reverse proxy, which sets X-Forwarded-Proto and X-Forwarded-For. Both are believed only from
# TRUSTED_PROXIES (addresses or networks, comma-separated; default loopback), the one list Django reads too
# (settings.py) to tell clients apart when it counts failed sign-ins.
forwarded_allow_ips = os.environ.get("TRUSTED_PROXIES") or "127.0.0.1,::1"
accesslog = os.environ.get("WEB_ACCESS_LOG") or "-"
# No runtime control socket: by default every instance on a host would share one path under $HOME.
control_socket_disable = True
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Set before the workers load Django: names web connections in pg_stat_activity, and no statement of a web
# request runs longer than this (the request then answers 503 and the thread serves the next one).
os.environ.setdefault("DATABASE_APPLICATION_NAME", "helpdesk-web")
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "30s")


def post_worker_init(worker: object) -> None:
    """Django, DRF and the URL conf are loaded by now and live as long as the worker: keep them out of the
    collector's full passes, which took ~50 ms every second or so under load (the 1% latency tail;
    bench/RESULTS.md)."""
    gc.freeze()
