"""Single-statement inserts and updates for the hot paths (inbound messages, event publishing).

Building a query through the ORM costs about 0.7 ms of Python per statement on the 2-core machines
this runs on (bench/RESULTS.md); receive() issues about eight, which alone caps ingest near 150
messages/s. These helpers build the same SQL once per shape, cache it, and let Django's fields
prepare the values (JSON, arrays, aware datetimes). Every column without a database default must be
given (checked once per statement shape), so a row is what the ORM would have written.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


@cache
def _insert_sql(model: type[models.Model], columns: tuple[str, ...], rows: int) -> tuple[str, tuple]:
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in columns)
    # The database fills only NULL and db_default columns: every other one must be given, or the row
    # would differ from what the ORM writes (Python defaults are not in the schema).
    missing = [
        field.name
        for field in meta.concrete_fields
        if field not in fields and not field.primary_key and not field.null and not field.has_db_default()
    ]
    if missing:
        raise ValueError(f"insert_rows({model.__name__}) needs values for {missing}")
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Only identifiers from model metadata (quoted) go into the text; every value is a parameter.
    sql = "INSERT INTO {} ({}) VALUES {} RETURNING {}".format(  # noqa: S608
        connection.ops.quote_name(meta.db_table),
        ", ".join(connection.ops.quote_name(field.column) for field in fields),
        ", ".join([placeholders] * rows),
        connection.ops.quote_name(meta.pk.column),
    )
    return sql, fields


def insert_rows(model: type[M], rows: list[dict[str, Any]], *, returning: tuple[str, ...] = ()) -> list[M]:
    """INSERT the rows (all with the same keys) in one statement; return saved instances with their pk.

    `returning` names columns filled by the database (e.g. a sequence default) to read back too.
    """
    if not rows:
        return []
    columns = tuple(rows[0])
    sql, fields = _insert_sql(model, columns, len(rows))
    if returning:
        sql += ", " + ", ".join(connection.ops.quote_name(model._meta.get_field(f).column) for f in returning)
    params = [
        field.get_db_prep_save(row[name], connection)
        for row in rows
        for name, field in zip(columns, fields, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    instances = []
    for row, (pk, *extra) in zip(rows, returned, strict=True):
        instance = model(**row, **dict(zip(returning, extra, strict=True)))
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = connection.alias
        instances.append(instance)
    return instances


def insert_row(model: type[M], *, returning: tuple[str, ...] = (), **values: Any) -> M:
    return insert_rows(model, [values], returning=returning)[0]


def update_row(instance: models.Model, **values: Any) -> None:
    """UPDATE these columns of one row by primary key, and set them on the instance."""
    meta = instance._meta
    fields = [meta.get_field(name) for name in values]
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 (identifiers from model metadata)
        connection.ops.quote_name(meta.db_table),
        ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in fields),
        connection.ops.quote_name(meta.pk.column),
    )
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, instance.pk])
    for name, value in values.items():
        setattr(instance, name, value)
