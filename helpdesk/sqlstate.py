"""PostgreSQL's SQLSTATE of a database error, read the same way whichever driver raised it.

Django wraps the driver's exception (`django.db.DatabaseError` with the original as `__cause__`);
psycopg2 names the code `pgcode`, psycopg 3 `sqlstate`.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

# The codes the code base acts on (PostgreSQL's errcodes table).
DUPLICATE_PREPARED_STATEMENT = "42P05"
INVALID_SQL_STATEMENT_NAME = "26000"  # EXECUTE of a statement the session does not hold
QUERY_CANCELED = "57014"  # statement_timeout, or a cancel request


def sqlstate(error: BaseException | None) -> str | None:
    """The five-character SQLSTATE of `error` or of the driver error it wraps; None if it has none
    (a connection that broke carries no code)."""
    for candidate in (error, getattr(error, "__cause__", None)):
        code = getattr(candidate, "pgcode", None) or getattr(candidate, "sqlstate", None)
        if code:
            return code
    return None


# The server ended the session or will not take one now: admin_shutdown, crash_shutdown, cannot_connect_now.
_SERVER_GOING_AWAY = ("57P01", "57P02", "57P03")


def connection_failed(error: BaseException) -> bool:
    """True when `error` means the connection broke or could not be opened (a pooler or the server
    restarting), not that a statement was refused: the driver's client-side errors carry no SQLSTATE,
    the server's say connection_exception (class 08) or that it is shutting down."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    code = sqlstate(error)
    return code is None or code.startswith("08") or code in _SERVER_GOING_AWAY
