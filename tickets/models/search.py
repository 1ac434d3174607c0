"""The text search documents of tickets, messages and customers, as the search indexes compute them.

One configuration, PostgreSQL's `russian`: it stems Cyrillic words with the Russian Snowball stemmer and
Latin-script words (`asciiword`) with the English one, English stop words included, so «возврата» and
"refunds" both reach their stems from one tsvector. A second, `english` document would repeat every
lexeme and double the index and its cost on each inbound message.

The documents are index expressions, not stored columns: the indexes are built CONCURRENTLY, the ORM never
reads a tsvector with a message, and the ingest code writes rows as before. Queries must spell the same
expression for PostgreSQL to use the index, hence these helpers, used by the indexes and the selectors alike.
"""

from django.db import models

SEARCH_CONFIG = "russian"
# A message is indexed up to here: what a customer wrote is at the top, quoted history and signatures follow;
# it bounds the cost of each insert and keeps every document far below the tsvector's 1 MB limit.
SEARCHED_CHARACTERS = 20_000


class SearchDocument(models.Func):
    """to_tsvector('russian', <text column>), the expression of a search index."""

    template = "to_tsvector('russian'::regconfig, %(expressions)s)"
    output_field = models.TextField()


class BoundedSearchDocument(models.Func):
    """The document of a long text: its first SEARCHED_CHARACTERS characters."""

    template = "to_tsvector('russian'::regconfig, left(%(expressions)s, 20000))"
    output_field = models.TextField()


def document_sql(column: str, *, bounded: bool = False) -> str:
    """The same expression as raw SQL over `column` (e.g. 'm.body_text'), as the selectors write it."""
    if bounded:
        return f"to_tsvector('russian'::regconfig, left({column}, {SEARCHED_CHARACTERS}))"
    return f"to_tsvector('russian'::regconfig, {column})"
