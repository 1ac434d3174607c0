"""The text search documents of messages, tickets and customers, as the search indexes hold them.

One configuration, PostgreSQL's `russian`: it stems Cyrillic words with the Russian Snowball stemmer and
Latin-script words (`asciiword`) with the English one, English stop words included, so «возврата» and
"refunds" both reach their stems from one tsvector. A second, `english` document would repeat every
lexeme and double the index and its cost on each inbound message.

Messages: a stored generated column, `tickets_message.search_document` (migration 0007), so ranking and
the newest-first walk over frequent words read a stored tsvector (about a microsecond a row) instead of
parsing the text again (tens of microseconds). It is not a model field: the ORM never reads it with a
message, and the ingest path (tickets.rows) writes rows as before while PostgreSQL fills it.
Subjects and customer names are short: index expressions are enough, and those tables keep their width.
Queries must spell an index's expression exactly for PostgreSQL to use it: hence `document_sql`.
"""

from django.db import models

SEARCH_CONFIG = "russian"
# A message is indexed up to here. Parsing costs about 0.17 µs a character on every insert (0.33 ms for
# 2,000, a fifth of a whole receive(); bench/RESULTS.md), so the hot path parses what a customer wrote, which
# comes first; an email's quoted history follows, and is indexed with the message it quotes.
SEARCHED_CHARACTERS = 2_000
MESSAGE_DOCUMENT_COLUMN = "search_document"
MESSAGE_DOCUMENT_SQL = f"to_tsvector('russian'::regconfig, left(body_text, {SEARCHED_CHARACTERS}))"


class SearchDocument(models.Func):
    """to_tsvector('russian', <text column>), the expression of a search index."""

    template = "to_tsvector('russian'::regconfig, %(expressions)s)"
    output_field = models.TextField()


def document_sql(column: str) -> str:
    """SearchDocument over `column` (e.g. 't.subject') as raw SQL, as the selectors write it."""
    return f"to_tsvector('russian'::regconfig, {column})"
