"""Plain SQL for the ingest hot path: `tickets.inbound.receive()` finds and writes through here.

Building a query through the ORM costs about 0.7 ms of Python per statement on the 2-core machines
this runs on, and every statement is a round trip with its own parse, plan and executor start
(bench/RESULTS.md). `Writes` sends the rows one inbound message needs (customer, identity, ticket,
message, events) as one statement: a chain of data-modifying CTEs in which a later row can take an
earlier row's new id. Each row is a model instance, so Django's defaults apply and its fields prepare
every value (`pre_save`, then `get_db_prep_save`, as `save()` does): a row is what the ORM would have
written, whatever fields the model gains. The SQL is built once per shape and cached.

Both the chains and receive()'s lookup run as prepared statements (`Prepared`): PostgreSQL parses and
plans them once per connection instead of on every message, which was half of their cost. That holds on
a direct connection and behind a session pooler; behind a transaction pooler
(`DATABASE_POOL_MODE=transaction`) they go unprepared, as no session outlives a transaction there.
"""

# Only identifiers from model metadata (quoted) go into the SQL text; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from helpdesk.sqlstate import DUPLICATE_PREPARED_STATEMENT, INVALID_SQL_STATEMENT_NAME, sqlstate

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True, slots=True)
class NewId:
    """Stands for the id an earlier insert of the same `Writes` gives its (single) row."""

    step: int


@dataclass(eq=False)
class Inserted(Generic[M]):
    """The instances of one insert; `Writes.execute()` gives them their ids and `returning` columns."""

    instances: list[M]
    returning: tuple[str, ...]
    step: int

    @property
    def model(self) -> type[M]:
        return type(self.instances[0])

    @property
    def id(self) -> NewId:
        if len(self.instances) != 1:
            raise ValueError("only a single-row insert's id can be referenced")
        return NewId(self.step)

    @property
    def instance(self) -> M:
        (instance,) = self.instances
        return instance


@dataclass(eq=False)
class _Update:
    instance: models.Model
    values: dict[str, Any]


class Writes:
    """INSERTs and UPDATEs sent as one statement; values may be the `NewId` of an earlier insert.

    Every step sees the database as it was before the statement: a later step learns of an earlier
    step's row only through its `NewId`. Meant for the few fixed shapes of a hot path (each shape is a
    statement prepared on every connection), not for bulk loads.

    writes = Writes()
    customer = writes.insert([Customer(name="Ivan")])
    writes.insert([Identity(customer_id=customer.id, channel="email", address="ivan@example.com")])
    writes.execute()
    customer.instance.pk

    A foreign key given as a `NewId` (on its attname, `customer_id`) takes that earlier row's id.
    """

    def __init__(self) -> None:
        self._steps: list[Inserted | _Update] = []

    def insert(self, instances: list[M], *, returning: tuple[str, ...] = ()) -> Inserted[M]:
        """New instances of one model. `returning` names database-filled columns to read back."""
        if not instances:
            raise ValueError("nothing to insert")
        if len({type(instance) for instance in instances}) != 1:
            raise ValueError("one insert takes instances of one model")
        inserted = Inserted(instances, returning, step=len(self._steps))
        self._steps.append(inserted)
        return inserted

    def update(self, instance: models.Model, **values: Any) -> None:
        """UPDATE these columns of the instance's row by primary key (set on the instance too)."""
        if any(isinstance(value, NewId) for value in values.values()):
            raise ValueError("an update takes values, not the ids of rows written in the same statement")
        self._steps.append(_Update(instance, values))

    def execute(self) -> None:
        if not self._steps:
            raise ValueError("nothing to write")
        params: list[Any] = []
        shapes = []
        for step in self._steps:
            if isinstance(step, _Update):
                meta = step.instance._meta
                params.extend(_prepared(meta.get_field(name), value) for name, value in step.values.items())
                params.append(step.instance.pk)
                shapes.append(("update", type(step.instance), tuple(step.values)))
                continue
            fields = _inserted_fields(step.model)
            # pre_save as save() calls it for a new row: it fills auto_now_add times and the like.
            rows = [[f.pre_save(instance, True) for f in fields] for instance in step.instances]
            params.extend(
                _prepared(model_field, value)
                for row in rows
                for model_field, value in zip(fields, row, strict=True)
                if not isinstance(value, NewId)
            )
            sources = tuple(tuple(v.step if isinstance(v, NewId) else None for v in row) for row in rows)
            shapes.append(("insert", step.model, sources, step.returning))
        with connection.cursor() as cursor:
            _chain_sql(tuple(shapes)).execute(cursor, params)
            returned = iter(cursor.fetchone())
        new_ids: dict[int, int] = {}
        for step in self._steps:
            if isinstance(step, _Update):
                for name, value in step.values.items():
                    setattr(step.instance, name, value)
                continue
            pks = next(returned)
            extra = {name: next(returned) for name in step.returning}
            new_ids[step.step] = pks[0]
            for number, (instance, pk) in enumerate(zip(step.instances, pks, strict=True)):
                for model_field in _inserted_fields(step.model):
                    value = getattr(instance, model_field.attname)
                    if isinstance(value, NewId):
                        setattr(instance, model_field.attname, new_ids[value.step])
                for name in step.returning:
                    setattr(instance, step.model._meta.get_field(name).attname, extra[name][number])
                instance.pk = pk
                instance._state.adding = False
                instance._state.db = connection.alias


def insert_unless_exists(instance: models.Model, *, unique: tuple[str, ...]) -> bool:
    """INSERT the instance's row unless a row with the same `unique` columns exists; True if inserted.

    One prepared statement (`INSERT … ON CONFLICT DO NOTHING RETURNING id`) where `get_or_create` takes a
    SELECT, an INSERT and a COMMIT, each built by the ORM. Every column is the instance's own value as
    `save()` would prepare it (`pre_save` fills defaults such as the time); the new pk is set on it.
    """
    model = type(instance)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        _insert_unless_exists_sql(model, unique).execute(cursor, params)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return True


@cache
def _insert_unless_exists_sql(model: type[models.Model], unique: tuple[str, ...]) -> Prepared:
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    conflict = ", ".join(quote(meta.get_field(name).column) for name in unique)
    return Prepared(
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )


def columns(model: type[models.Model], alias: str) -> str:
    """The model's columns in `load()` order, for a SELECT list: alias."col", ..."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def load(model: type[M], values: tuple[Any, ...] | list[Any]) -> M:
    """An instance from the raw values of `columns(model, ...)`, converted as the ORM converts them."""
    values = list(values)
    for index, convert in _converters(model):
        values[index] = convert(values[index])
    return model.from_db(connection.alias, None, values)


@cache
def _converters(model: type[models.Model]) -> list[tuple[int, Callable[[Any], Any]]]:
    found = []
    for index, model_field in enumerate(model._meta.concrete_fields):
        column = model_field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            found.append((index, partial(_convert, convert, column)))
    return found


def _convert(convert: Callable, column: Any, value: Any) -> Any:
    return convert(value, column, connection)


def _prepared(model_field: models.Field, value: Any) -> Any:
    return model_field.get_db_prep_save(value, connection)


@cache
def _chain_sql(shape: tuple) -> Prepared:
    """One statement for a chain of writes: step N is the CTE wN; the SELECT returns each insert's
    ids (then its `returning` columns) as arrays in insertion order.
    """
    quote = connection.ops.quote_name
    ctes, results = [], []
    for number, (kind, model, *rest) in enumerate(shape):
        meta = model._meta
        table = quote(meta.db_table)
        pk = quote(meta.pk.column)
        if kind == "update":
            (names,) = rest
            assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in names)
            ctes.append(f"w{number} AS (UPDATE {table} SET {assignments} WHERE {pk} = %s)")
            continue
        sources, returning = rest
        columns = [quote(f.column) for f in _inserted_fields(model)]
        rows = ", ".join("(" + ", ".join(_value(shape, source) for source in row) + ")" for row in sources)
        returned = [pk, *(quote(meta.get_field(name).column) for name in returning)]
        ctes.append(
            f"w{number} AS (INSERT INTO {table} ({', '.join(columns)}) VALUES {rows} "
            f"RETURNING {', '.join(returned)})"
        )
        results.extend(f"ARRAY(SELECT {column} FROM w{number} ORDER BY {pk})" for column in returned)
    return Prepared("WITH " + ",\n".join(ctes) + "\nSELECT " + (", ".join(results) or "NULL"))


def _value(shape: tuple, source: int | None) -> str:
    """A parameter, or the new id of step `source`'s row."""
    if source is None:
        return "%s"
    pk = connection.ops.quote_name(shape[source][1]._meta.pk.column)
    return f"(SELECT {pk} FROM w{source})"


@cache
def _inserted_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    """Every column an INSERT gives: all but the primary key and the columns only the database fills
    (a `db_default` without a Python default, such as the ticket number's sequence)."""
    return tuple(
        f
        for f in model._meta.concrete_fields
        if not f.primary_key and not (f.has_db_default() and not f.has_default())
    )


# The session's prepared statements were not what we remembered: our PREPARE met one of the same name
# (another client of a pooler prepared it on this server connection), or our EXECUTE met none (a pooler's
# DISCARD ALL, or another server connection). Either way the statement did not run.
_OUT_OF_STEP = frozenset({DUPLICATE_PREPARED_STATEMENT, INVALID_SQL_STATEMENT_NAME})

# Connections (psycopg2's, so a reconnect starts afresh) and the statements prepared on each.
_prepared_on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def out_of_step(error: BaseException) -> bool:
    """True when a statement failed only because the session's prepared statements were not the ones
    this process remembered: nothing ran, and a rerun of the transaction asks the session afresh."""
    return sqlstate(error) in _OUT_OF_STEP


def transaction_pooling(db: BaseDatabaseWrapper) -> bool:
    """DATABASE_POOL_MODE=transaction: a pooler (PgBouncer's pool_mode = transaction) gives each
    transaction whichever server connection is free, so no session state outlives a transaction."""
    return db.settings_dict.get("POOL_MODE") == "transaction"


class Prepared:
    """A statement that each connection prepares on first use and then only EXECUTEs.

    Behind a transaction pooler it goes as plain parameterised SQL instead, parsed and planned each
    time: the next transaction may run on a server connection that lacks the statement, or holds it
    already from another client, and PREPARE is not transactional, so even PREPARE … DEALLOCATE within
    one transaction leaves the statement behind when anything fails in between.

    `sql` takes its parameters either all as %s (a list) or all as %(name)s (a dict; a name may
    appear several times), and holds no other `%`.
    """

    def __init__(self, sql: str) -> None:
        self.names: list[str] = []  # for %(name)s parameters; %s ones are simply numbered
        positional: list[None] = []

        def number(match: re.Match) -> str:
            if match[1] is None:
                positional.append(None)
                return f"${len(positional)}"
            if match[1] not in self.names:
                self.names.append(match[1])
            return f"${self.names.index(match[1]) + 1}"

        text = re.sub(r"%(?:\((\w+)\))?s", number, sql)
        self.name = "helpdesk_" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:24]
        self._prepare = f"PREPARE {self.name} AS {text}"
        count = len(self.names) + len(positional)
        self._execute = f"EXECUTE {self.name}" + (f" ({', '.join(['%s'] * count)})" if count else "")
        # Unprepared: every %(name)s becomes %s, its value sent once per occurrence.
        self._plain_names = re.findall(r"%\((\w+)\)s", sql)
        self._plain = re.sub(r"%\((\w+)\)s", "%s", sql)

    def execute(
        self,
        cursor: CursorWrapper,
        params: list[Any] | dict[str, Any],
        *,
        before: str = "",
        before_params: tuple[Any, ...] = (),
    ) -> None:
        """Run it with these parameters. `before` is a statement (%s parameters) sent ahead in the same
        round trip, with its own snapshot: e.g. a lock that this statement must read after."""
        if transaction_pooling(cursor.db):
            cursor.execute(before + self._plain, [*before_params, *self._plain_values(params)])
            return
        values = [*before_params, *self._values(params)]
        try:
            self._prepare_on(cursor)
            cursor.execute(before + self._execute, values)
        except DatabaseError as error:
            if not out_of_step(error):
                raise
            _prepared_on.pop(cursor.cursor.connection, None)
            if not cursor.db.get_autocommit():
                raise  # the transaction is aborted: whoever opened it runs it again (receive() does)
            # Outside a transaction there is nothing to undo: ask the session what it holds, and go again.
            self._prepare_on(cursor)
            cursor.execute(before + self._execute, values)

    def explain(self, cursor: CursorWrapper, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """The plan of one run with these parameters (EXPLAIN, FORMAT JSON): prepared, under the session's
        plan_cache_mode; behind a transaction pooler, the plain statement's custom plan."""
        if transaction_pooling(cursor.db):
            cursor.execute("EXPLAIN (FORMAT JSON) " + self._plain, self._plain_values(params))
        else:
            self._prepare_on(cursor)
            cursor.execute("EXPLAIN (FORMAT JSON) " + self._execute, self._values(params))
        (plan,) = cursor.fetchone()
        return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]

    def _values(self, params: list[Any] | dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names] if isinstance(params, dict) else params

    def _plain_values(self, params: list[Any] | dict[str, Any]) -> list[Any]:
        return [params[name] for name in self._plain_names] if isinstance(params, dict) else params

    def _prepare_on(self, cursor: CursorWrapper) -> None:
        raw_connection = cursor.cursor.connection
        prepared = _prepared_on.get(raw_connection)
        if prepared is None:
            # A session handed over by a pooler may hold our statements already (same text, same name).
            cursor.execute("SELECT name FROM pg_prepared_statements")
            prepared = _prepared_on[raw_connection] = {name for (name,) in cursor.fetchall()}
        if self.name not in prepared:
            cursor.execute(self._prepare)
            prepared.add(self.name)
