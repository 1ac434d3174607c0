"""Configuration from the environment: production settings pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    inherited = {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT"}
    base = {key: value for key, value in os.environ.items() if key not in inherited}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "helpdesk.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="k7#Jq2v!9xLp$Zr4Tn8&Wm1Yb6@Hc3Fd5Gs0Ae*Uo2Ri9Pl4Kj7Mn",
        ALLOWED_HOSTS="helpdesk.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", ALLOWED_HOSTS="helpdesk.example.com")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_debug_is_off_unless_set():
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG, settings.LANGUAGE_CODE, settings.TIME_ZONE)",
        SECRET_KEY="x" * 60,
        DEFAULT_LANGUAGE="ru",
        TIME_ZONE="Europe/Moscow",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["False", "ru", "Europe/Moscow"]


def test_openapi_schema_is_valid_and_generates_without_warnings(tmp_path):
    schema = tmp_path / "schema.yml"

    result = run_manage("spectacular", "--validate", "--fail-on-warn", "--file", str(schema), DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert "/api/v1/tickets/{ticket_id}/reply/" in schema.read_text()


def test_a_malformed_statement_timeout_is_refused_at_start():
    result = run_manage("check", SECRET_KEY="x" * 60, DATABASE_STATEMENT_TIMEOUT="30s -c fsync=off")

    assert result.returncode != 0
    assert "DATABASE_STATEMENT_TIMEOUT" in result.stderr


def test_a_transaction_pooler_turns_off_session_state_and_statement_pooling_is_refused():
    show = (
        "from django.db import connection as c; "
        "print(c.settings_dict['POOL_MODE'], c.settings_dict['DISABLE_SERVER_SIDE_CURSORS'])"
    )
    behind_pooler = run_manage("shell", "-c", show, SECRET_KEY="x" * 60, DATABASE_POOL_MODE="transaction")
    direct = run_manage("shell", "-c", show, SECRET_KEY="x" * 60)
    statement = run_manage("check", SECRET_KEY="x" * 60, DATABASE_POOL_MODE="statement")

    assert behind_pooler.returncode == 0, behind_pooler.stderr
    assert behind_pooler.stdout.split()[-2:] == ["transaction", "True"]
    assert direct.stdout.split()[-2:] == ["session", "False"]
    assert statement.returncode != 0
    assert "DATABASE_POOL_MODE" in statement.stderr
