"""Request body parsers for the whole API: JSON checked once, at the edge, for what PostgreSQL can store."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with 400 what would otherwise fail deep inside as a 500.

    Refused: nesting past Python's recursion limit; text PostgreSQL cannot store (NUL, lone surrogates), in
    keys too; numbers that are not finite (1e400, NaN). Integers out of a field's range get the serializers'
    own field messages.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        problem = storable_problem(document)
        if problem:
            raise ParseError(f"JSON parse error - {problem}.")
        return document


def storable_problem(document: Any) -> str | None:
    """What in a parsed JSON document the database could not store, or None. Iterative: any depth."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                return "text may not contain NUL characters"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "text may not contain unpaired surrogates"
        elif isinstance(value, float) and not math.isfinite(value):
            return "numbers must be finite"
    return None
