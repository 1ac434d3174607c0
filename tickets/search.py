"""Ticket search: what a query means, and the SQL that finds and ranks the tickets it matches.

`tickets.selectors.search_tickets()` is the entry; this module reads a query and runs the ranking.

A query is read three ways at once. Text: PostgreSQL full-text search (`websearch_to_tsquery`, so user
syntax is never parsed as tsquery syntax) over ticket subjects, every message's text and customer names,
with the indexes and configuration of tickets.models.search. A ticket number: `1234` or `#1234`. An address:
an email, a phone number in any common format (to E.164, as tickets.identities stores it), a Telegram user id
or @handle, a widget visitor id: exact lookups on identities, giving that customer's tickets.

Ranking: a ticket number outranks an address, which outranks text; text scores are ts_rank, subject words
weigh double; ties go to the ticket with the newest activity. Each source contributes at most its newest
CANDIDATES matches: ts_rank costs about a microsecond per row it reads, so a word found in a tenth of all
tickets would cost a tenth of the table (PERFORMANCE-NOTES item 4). Its newest matches come from walking
the newest RECENT_MESSAGES messages back; a rarer word, with fewer matches there, from its index alone
(never ORDER BY id DESC LIMIT over the index: the planner then walks the whole primary key, item 5).
Figures at a million tickets: bench/RESULTS.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import phonenumbers
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime
from django.utils.html import escape

from tickets.exceptions import InvalidIdentity
from tickets.identities import VISITOR_ID, normalize_address
from tickets.models import Channel
from tickets.models.search import SEARCHED_CHARACTERS, document_sql

MAX_QUERY_LENGTH = 200
# Newest matches taken from each source before ranking.
CANDIDATES = 500
# How far back (in messages) the newest-first walk goes for a frequent word; rarer words use the index alone.
RECENT_MESSAGES = 50_000
# A customer found by name or address brings their most recently active tickets.
TICKETS_PER_CUSTOMER = 50
# Scores add up per ticket; ts_rank gives well under 1, so an exact number or address always ranks first.
NUMBER_SCORE = 1000.0
ADDRESS_SCORE = 100.0
SUBJECT_WEIGHT = 2.0
# Phone numbers written without a country code are read as numbers of this country.
PHONE_REGION = "RU"
# The highlighted fragment: a few words around the match, from a bounded stretch of the message.
HIGHLIGHT_OPTIONS = (
    "StartSel=\x01, StopSel=\x02, FragmentDelimiter=\x03, "
    "MaxWords=18, MinWords=8, ShortWord=2, MaxFragments=2"
)
# A match lies within what the document holds, so the fragment is looked for there only.
HIGHLIGHTED_CHARACTERS = SEARCHED_CHARACTERS

_NUMBER = re.compile(r"#?\s*([1-9][0-9]{0,17})")
_PHONE = re.compile(r"\+?[0-9 ()./-]{7,30}")
_TELEGRAM_HANDLE = re.compile(r"@([A-Za-z][A-Za-z0-9_]{3,31})")


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """What one query asks for: full-text words, ticket numbers and (channel, address) pairs."""

    text: str
    numbers: tuple[int, ...] = ()
    addresses: tuple[tuple[str, str], ...] = ()
    telegram_handles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchPosition:
    """Where a page ended, in ranking order: the next page starts after this ticket."""

    score: float
    updated_at: datetime
    ticket_id: int

    def encode(self) -> str:
        raw = json.dumps([self.score, self.updated_at.isoformat(), self.ticket_id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> SearchPosition:
        """ValueError unless `cursor` is one that encode() made."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            score, updated_at, ticket_id = json.loads(raw)
            when = parse_datetime(updated_at)
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
            raise ValueError("not a search cursor") from error
        if (
            not isinstance(score, int | float)
            or isinstance(score, bool)
            or when is None
            or when.tzinfo is None
            or not isinstance(ticket_id, int)
            or isinstance(ticket_id, bool)
            or not 0 < ticket_id < 2**63
        ):
            raise ValueError("not a search cursor")
        return cls(float(score), when, ticket_id)


def clean_query(query: str) -> str:
    """The query as searched: NUL (which PostgreSQL cannot take) and other control characters as spaces, cut
    to MAX_QUERY_LENGTH at a word's end. Callers that can answer 400 refuse such queries first; this keeps
    the rest safe."""
    words = "".join(" " if ord(char) < 32 or char == "\x7f" else char for char in query).split()
    kept: list[str] = []
    length = -1
    for word in words:
        length += len(word) + 1
        if length > MAX_QUERY_LENGTH:
            break
        kept.append(word)
    return " ".join(kept)


def read_query(query: str) -> SearchTerms:
    """Every reading of the query that could name a ticket, a customer or words in them."""
    text = clean_query(query)
    numbers: list[int] = []
    addresses: list[tuple[str, str]] = []
    handles: list[str] = []
    if match := _NUMBER.fullmatch(text):
        number = int(match[1])
        numbers.append(number)
        addresses.append((Channel.TELEGRAM, str(number)))
    if "@" in text and " " not in text:
        if handle := _TELEGRAM_HANDLE.fullmatch(text):
            handles.append(handle[1].lower())
        else:
            addresses.extend(_normalized(Channel.EMAIL, text))
    if _PHONE.fullmatch(text) and sum(char.isdigit() for char in text) >= 7:
        addresses.extend(_phones(text))
    if VISITOR_ID.fullmatch(text) and not text.isdigit():
        addresses.extend((channel, text) for channel in (Channel.WIDGET, Channel.API))
    return SearchTerms(
        text=text,
        numbers=tuple(numbers),
        addresses=tuple(dict.fromkeys(addresses)),
        telegram_handles=tuple(handles),
    )


def _normalized(channel: str, address: str, *, region: str | None = None) -> list[tuple[str, str]]:
    try:
        return [(channel, normalize_address(channel, address, default_region=region))]
    except InvalidIdentity:
        return []


def _phones(text: str) -> list[tuple[str, str]]:
    """A number as written (+7 916 …, 8 (916) …, 79161234567): international when it starts with + or
    parses so with a + added, national in PHONE_REGION otherwise."""
    found = _normalized(Channel.PHONE, text, region=PHONE_REGION)
    digits = "".join(char for char in text if char.isdigit())
    if not text.startswith("+"):
        found += _normalized(Channel.PHONE, "+" + digits)
    valid = []
    for channel, address in found:
        # "Possible" lets through short local numbers of any country; a search wants real ones only.
        if phonenumbers.is_valid_number(phonenumbers.parse(address)):
            valid.append((channel, address))
    return valid


@dataclass(frozen=True, slots=True)
class Candidate:
    ticket_id: int
    score: float
    message_id: int | None


def ranked_candidates(terms: SearchTerms) -> list[Candidate]:
    """The tickets the query matches, each with its score and its best-matching message (one statement).

    Not access-checked: the selector keeps only the tickets the agent may see.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_PLANNED_FOR_SEARCH + candidates_sql(), candidates_params(terms))
        found = [
            Candidate(ticket_id, score, message_id) for ticket_id, score, message_id in cursor.fetchall()
        ]
        cursor.execute(_PLANNED_AS_BEFORE)
    return found


# For this statement only (SET LOCAL, undone as the transaction or savepoint ends, and at once after it):
# - no sequential scan: a word that used to be frequent but is rare lately must still be read through its
#   index in the older_messages step, not by reading every message;
# - no parallel workers: starting them costs tens of milliseconds, more than the whole search;
# - no JIT: compiling costs more than this statement runs.
_PLANNER_SETTINGS = {"enable_seqscan": "off", "max_parallel_workers_per_gather": "0", "jit": "off"}
_PLANNED_FOR_SEARCH = "".join(f"SET LOCAL {name} = {value}; " for name, value in _PLANNER_SETTINGS.items())
_PLANNED_AS_BEFORE = "".join(f"SET LOCAL {name} TO DEFAULT; " for name in _PLANNER_SETTINGS)


@cache
def candidates_sql() -> str:
    """The candidate tickets with their scores; %(name)s parameters from candidates_params()."""
    subject = document_sql("t.subject")
    name = document_sql("c.name")
    return f"""
        WITH newest_message AS MATERIALIZED (
            SELECT coalesce(max(id), 0) AS id FROM tickets_message
        ),
        recent_messages AS MATERIALIZED (
            -- Frequent words: their newest matches, walking back over at most WINDOW messages.
            SELECT m.id FROM tickets_message m
            WHERE m.search_document @@ websearch_to_tsquery('russian', %(text)s)
              AND m.id > (SELECT id FROM newest_message) - %(window)s
            ORDER BY m.id DESC LIMIT %(candidates)s
        ),
        older_messages AS MATERIALIZED (
            -- Rarer words: their newest matches before the window, through the index alone (id + 0: the
            -- planner must not walk the primary key back over the whole table for them).
            SELECT m.id FROM tickets_message m
            WHERE (SELECT count(*) FROM recent_messages) < %(candidates)s
              AND m.search_document @@ websearch_to_tsquery('russian', %(text)s)
              AND m.id + 0 <= (SELECT id FROM newest_message) - %(window)s
            ORDER BY m.id + 0 DESC LIMIT %(candidates)s
        ),
        message_hits AS (
            -- Ranked after the limit: ts_rank reads only the candidates.
            SELECT DISTINCT ON (m.ticket_id) m.ticket_id, m.id AS message_id,
                   ts_rank(m.search_document, websearch_to_tsquery('russian', %(text)s))::float8 AS score
            FROM tickets_message m
            WHERE m.id IN (SELECT id FROM recent_messages UNION ALL SELECT id FROM older_messages)
            ORDER BY m.ticket_id, score DESC, m.id DESC
        ),
        subject_matches AS MATERIALIZED (
            SELECT t.id FROM tickets_ticket t
            WHERE {subject} @@ websearch_to_tsquery('russian', %(text)s)
            ORDER BY t.id DESC LIMIT %(candidates)s
        ),
        subject_hits AS (
            SELECT t.id AS ticket_id,
                   %(subject_weight)s * ts_rank({subject}, websearch_to_tsquery('russian', %(text)s)) AS score
            FROM tickets_ticket t WHERE t.id IN (SELECT id FROM subject_matches)
        ),
        matched_customers AS (
            SELECT c.id AS customer_id,
                   ts_rank({name}, websearch_to_tsquery('russian', %(text)s))::float8 AS score
            FROM (
                SELECT c.id FROM tickets_customer c
                WHERE {name} @@ websearch_to_tsquery('russian', %(text)s)
                ORDER BY c.id DESC LIMIT %(candidates)s
            ) newest JOIN tickets_customer c ON c.id = newest.id
            UNION ALL
            SELECT i.customer_id, %(address_score)s
            FROM unnest(%(channels)s::text[], %(addresses)s::text[]) AS wanted(channel, address)
            JOIN tickets_identity i ON i.channel = wanted.channel AND i.address = wanted.address
            UNION ALL
            SELECT i.customer_id, %(address_score)s
            FROM tickets_identity i
            WHERE i.channel = 'telegram' AND lower(i.display_name) = ANY(%(handles)s::text[])
        ),
        customer_hits AS (
            SELECT t.id AS ticket_id, best.score
            FROM (SELECT customer_id, max(score) AS score FROM matched_customers GROUP BY customer_id
                  ORDER BY max(score) DESC LIMIT %(candidates)s) best
            CROSS JOIN LATERAL (
                SELECT t.id FROM tickets_ticket t WHERE t.customer_id = best.customer_id
                ORDER BY t.updated_at DESC LIMIT %(tickets_per_customer)s
            ) t
        ),
        number_hits AS (
            SELECT t.id AS ticket_id, %(number_score)s AS score
            FROM tickets_ticket t WHERE t.number = ANY(%(numbers)s::bigint[])
        )
        SELECT ticket_id, sum(score)::float8 AS score, max(message_id) AS message_id
        FROM (
            SELECT ticket_id, score, message_id FROM message_hits
            UNION ALL SELECT ticket_id, score, NULL FROM subject_hits
            UNION ALL SELECT ticket_id, score, NULL FROM customer_hits
            UNION ALL SELECT ticket_id, score, NULL FROM number_hits
        ) hits
        GROUP BY ticket_id
    """  # noqa: S608 - only our own SQL fragments are formatted in; every value is a parameter


def candidates_params(terms: SearchTerms) -> dict[str, Any]:
    return {
        "text": terms.text,
        "candidates": CANDIDATES,
        "window": RECENT_MESSAGES,
        "tickets_per_customer": TICKETS_PER_CUSTOMER,
        "subject_weight": SUBJECT_WEIGHT,
        "address_score": ADDRESS_SCORE,
        "number_score": NUMBER_SCORE,
        "channels": [channel for channel, _ in terms.addresses],
        "addresses": [address for _, address in terms.addresses],
        "handles": [f"@{handle}" for handle in terms.telegram_handles] + list(terms.telegram_handles),
        "numbers": list(terms.numbers),
    }


def highlights(text: str, page: list[Candidate]) -> dict[int, str]:
    """Each ticket's matching fragment, as HTML: its best message's (else its subject's) text, escaped, the
    matched words in <mark>. One statement for the page; each text bounded to HIGHLIGHTED_CHARACTERS."""
    if not page:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.id,
                   ts_headline('russian', translate(left(coalesce(m.body_text, t.subject), %s), %s, '   '),
                               websearch_to_tsquery('russian', %s), %s)
            FROM unnest(%s::bigint[], %s::bigint[]) AS page(ticket_id, message_id)
            JOIN tickets_ticket t ON t.id = page.ticket_id
            LEFT JOIN tickets_message m ON m.id = page.message_id
            """,
            [
                HIGHLIGHTED_CHARACTERS,
                _MARKS,
                text,
                HIGHLIGHT_OPTIONS,
                [hit.ticket_id for hit in page],
                [hit.message_id for hit in page],
            ],
        )
        return {ticket_id: _marked(fragment) for ticket_id, fragment in cursor.fetchall()}


# ts_headline marks matches with these control characters; translate() first blanks any the text holds, so
# after escaping, the only tags in a fragment are the <mark> pairs ts_headline placed.
_MARKS = "\x01\x02\x03"


def _marked(fragment: str) -> str:
    return escape(fragment).replace("\x01", "<mark>").replace("\x02", "</mark>").replace("\x03", " … ")
