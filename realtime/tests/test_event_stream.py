"""/ws/events/: who may open a socket, which ticket events it hears, and catching up after a disconnect."""

from __future__ import annotations

import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core import signing
from rest_framework.test import APIClient

from conftest import inbound_message
from helpdesk.events import as_payload
from realtime import catchup, fanout, tokens
from realtime.consumers import RECONNECT
from realtime.tests.conftest import agent_socket, browser_headers, events_until, socket
from tickets import inbound, lifecycle, replies, selectors
from tickets.models import Channel, Team, Ticket, TicketEvent, User

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def new_ticket(*, team: Team | None = None, assignee: User | None = None) -> Ticket:
    """A new ticket from a new customer, routed as given (without events: routing is set up, not news)."""
    ticket = inbound.receive(
        inbound_message(
            channel=Channel.TELEGRAM, sender_address=str(time.monotonic_ns()), new_conversation=True
        )
    ).ticket
    Ticket.objects.filter(pk=ticket.pk).update(team=team, assignee=assignee)
    return Ticket.objects.get(pk=ticket.pk)


@database_sync_to_async
def note_on(ticket: Ticket, actor: User) -> int:
    """Something happens on the ticket: an internal note. Returns its event id."""
    replies.add_note(ticket, actor=actor, text="checked the logs")
    return ticket.events.order_by("-id").values_list("id", flat=True).first()


@pytest.fixture
def billing_ticket(billing) -> Ticket:
    return new_ticket(team=billing)


@pytest.fixture
def tech_ticket(tech) -> Ticket:
    return new_ticket(team=tech)


async def test_agent_hears_their_teams_ticket_and_not_another_teams(
    alice, carol, billing_ticket, tech_ticket, push_new_events
):
    async with agent_socket(alice) as ws:
        await note_on(tech_ticket, carol)
        await push_new_events()
        marker = await note_on(billing_ticket, carol)
        await push_new_events()

        events = await events_until(ws, marker)

    assert events == [
        {
            "type": "event",
            "id": marker,
            "name": "note.added",
            "ticket_id": billing_ticket.pk,
            "message_id": events[0]["message_id"],
            "actor_id": carol.pk,
            "occurred_at": events[0]["occurred_at"],
        }
    ]
    assert isinstance(events[0]["message_id"], int)


async def test_each_socket_hears_exactly_the_tickets_its_agent_may_see(
    alice, bob, carol, billing, tech, push_new_events
):
    tickets = await database_sync_to_async(
        lambda: [
            new_ticket(team=billing),
            new_ticket(team=tech),
            new_ticket(team=None),  # unrouted: every agent sees it
            new_ticket(team=tech, assignee=alice),  # another team's, but assigned to alice
        ]
    )()
    marker_ticket = tickets[2]
    async with agent_socket(alice) as alice_ws, agent_socket(bob) as bob_ws, agent_socket(carol) as carol_ws:
        for ticket in tickets:
            await note_on(ticket, carol)
            await push_new_events()
        marker = await note_on(marker_ticket, carol)
        await push_new_events()

        for agent, ws in ((alice, alice_ws), (bob, bob_ws), (carol, carol_ws)):
            heard = {event["ticket_id"] for event in await events_until(ws, marker)}
            may_see = await database_sync_to_async(
                lambda agent=agent: set(
                    selectors.tickets_visible_to(agent)
                    .filter(pk__in=[t.pk for t in tickets])
                    .values_list("pk", flat=True)
                )
            )()
            assert heard == may_see, agent.username
    assert len(may_see) == 4  # carol, the supervisor, sees every one


async def test_a_ticket_moved_to_another_team_is_news_to_both(
    alice, bob, carol, billing_ticket, tech, push_new_events
):
    async with agent_socket(alice) as alice_ws, agent_socket(bob) as bob_ws:
        await database_sync_to_async(lifecycle.update)(billing_ticket, actor=carol, team=tech)
        (moved,) = await push_new_events()

        for ws in (alice_ws, bob_ws):
            (event,) = await events_until(ws, moved)
            assert (event["name"], event["ticket_id"]) == ("ticket.updated", billing_ticket.pk)


async def test_a_socket_hears_each_event_once_though_it_reaches_it_through_two_groups(
    alice, carol, billing, push_new_events
):
    ticket = await database_sync_to_async(new_ticket)(team=billing, assignee=alice)  # team and assignee
    await push_new_events()
    async with agent_socket(alice) as ws:
        first = await note_on(ticket, carol)
        second = await note_on(ticket, carol)
        await push_new_events()
        await database_sync_to_async(redeliver)([first, second])
        marker = await note_on(ticket, carol)
        await push_new_events()

        assert [event["id"] for event in await events_until(ws, marker)] == [first, second, marker]


async def test_a_batch_spanning_many_tickets_reaches_every_socket(carol, billing, push_new_events):
    # Each ticket is a group of its own: far more groups than the layer's Redis connection pool holds.
    tickets = await database_sync_to_async(lambda: [new_ticket(team=billing) for _ in range(150)])()
    await push_new_events()
    async with agent_socket(carol) as ws:
        for ticket in tickets:
            await note_on(ticket, carol)
        (*_, last) = await push_new_events()

        heard = await events_until(ws, last)

    assert sorted(event["ticket_id"] for event in heard) == sorted(ticket.pk for ticket in tickets)


def redeliver(event_ids: list[int]) -> None:
    """The worker runs a batch again (acks_late after a crash)."""
    fanout.push_ticket_events([as_payload(event) for event in TicketEvent.objects.filter(pk__in=event_ids)])


async def test_a_ticket_stream_is_checked_like_the_api(
    alice, carol, billing_ticket, tech_ticket, push_new_events
):
    async with agent_socket(alice, f"ticket={billing_ticket.pk}") as ws:
        await note_on(tech_ticket, carol)
        await push_new_events()
        marker = await note_on(billing_ticket, carol)
        await push_new_events()
        assert [event["ticket_id"] for event in await events_until(ws, marker)] == [billing_ticket.pk]

    token = await database_sync_to_async(tokens.issue)(alice)
    missing = tech_ticket.pk + 10_000
    for ticket_id in (tech_ticket.pk, missing):  # another team's and a missing ticket: refused alike
        async with socket(f"/ws/events/?token={token}&ticket={ticket_id}") as (connected, _):
            assert not connected


async def test_a_ticket_stream_closes_once_its_ticket_moves_out_of_sight(
    alice, carol, billing_ticket, tech, push_new_events
):
    async with agent_socket(alice, f"ticket={billing_ticket.pk}") as ws:
        await database_sync_to_async(lifecycle.update)(billing_ticket, actor=carol, team=tech)
        (moved,) = await push_new_events()

        assert [event["id"] for event in await events_until(ws, moved)] == [moved]  # the move itself
        assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": RECONNECT}


async def test_the_session_of_a_signed_in_agent_opens_a_socket(alice):
    headers = await database_sync_to_async(browser_headers)(alice)
    async with socket(headers=headers) as (connected, ws):
        assert connected
        assert (await ws.receive_json_from(timeout=10))["type"] == "hello"


async def test_a_customers_session_no_session_and_a_foreign_page_are_refused(ivan, alice):
    customer = await database_sync_to_async(lambda: ivan.user)()
    refused = [
        await database_sync_to_async(browser_headers)(customer),
        [],
        [(b"origin", b"https://testserver")],
        [(b"cookie", b"sessionid=not-a-session"), (b"origin", b"https://testserver")],
        [
            (b"cookie", b'sessionid="abcdefgh\\000ijklabcdefgh\\000ijklabcd"'),
            (b"origin", b"https://testserver"),
        ],
        # The page is plain HTTP in production: anyone on the path could have written it.
        await database_sync_to_async(browser_headers)(alice, origin="http://testserver"),
        # Alice's real session, but the page opening the socket is someone else's (cross-site hijacking).
        await database_sync_to_async(browser_headers)(alice, origin="https://evil.example"),
        await database_sync_to_async(browser_headers)(alice, origin="null"),
        [(b"cookie", (await database_sync_to_async(browser_headers)(alice))[0][1])],  # no Origin at all
    ]
    for headers in refused:
        async with socket(headers=headers) as (connected, _):
            assert not connected, headers


async def test_only_an_exactly_named_host_is_a_trusted_origin(alice, settings):
    settings.ALLOWED_HOSTS = ["testserver", ".example.com", "*"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://helpdesk.example.org"]
    for origin, trusted in [
        ("https://testserver", True),
        ("https://helpdesk.example.org", True),
        ("https://uploads.example.com", False),  # a sibling subdomain under a wildcard
        ("https://evil.example", False),  # only `*` would allow it
        ("null", False),
        ("", False),
    ]:
        headers = await database_sync_to_async(browser_headers)(alice, origin=origin)
        async with socket(headers=headers) as (connected, _):
            assert connected is trusted, origin


async def test_forged_expired_revoked_and_customer_tokens_are_refused(alice, ivan, monkeypatch):
    good = await database_sync_to_async(tokens.issue)(alice)
    forged = signing.dumps(
        {"user": alice.pk, "auth": "0" * 16}, salt=tokens.SALT, key="not-our-secret-key" * 3
    )
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    an_hour_ago = time.time() - 3600
    with monkeypatch.context() as past:
        past.setattr(signing.time, "time", lambda: an_hour_ago)
        expired = await database_sync_to_async(tokens.issue)(alice)
    customer = await database_sync_to_async(lambda: tokens.issue(ivan.user))()
    unsigned_claims = signing.b64_encode(f'{{"user":{alice.pk}}}'.encode()).decode()

    for token in (forged, tampered, expired, customer, unsigned_claims, "x" * 5000):
        async with socket(f"/ws/events/?token={token}") as (connected, _):
            assert not connected, token[:40]

    # A password change voids tokens issued before it.
    async with socket(f"/ws/events/?token={good}") as (connected, _):
        assert connected

    def change_password() -> None:
        alice.set_password("a new password 9!")
        alice.save()

    await database_sync_to_async(change_password)()
    async with socket(f"/ws/events/?token={good}") as (connected, _):
        assert not connected


async def test_malformed_requests_and_unknown_paths_are_refused(alice):
    token = await database_sync_to_async(tokens.issue)(alice)
    for path in (
        f"/ws/events/?token={token}&ticket=abc",
        f"/ws/events/?token={token}&ticket=0",
        f"/ws/events/?token={token}&last_event_id=-1",
        f"/ws/events/?token={token}&ticket=99999999999999999999999",
        f"/ws/events/?token={token}&ticket=1&ticket=2",
        f"/ws/events/?token={token}&x=" + "a" * 3000,
        f"/ws/events/?token={token}&ticket=%00",
        f"/ws/other/?token={token}",
        "/ws/",
    ):
        async with socket(path) as (connected, _):
            assert not connected, path


async def test_a_token_from_the_web_tier_opens_a_socket_and_customers_get_none(alice, ivan):
    def token_for(user: User) -> tuple[int, dict]:
        client = APIClient()
        client.force_authenticate(user)
        response = client.post("/api/v1/realtime/token/")
        return response.status_code, response.json()

    status, body = await database_sync_to_async(token_for)(alice)
    assert status == 200
    assert body["url"] == "ws://testserver/ws/events/"
    assert body["expires_in"] == 60
    async with socket(f"/ws/events/?token={body['token']}") as (connected, _):
        assert connected

    status, _ = await database_sync_to_async(token_for)(await database_sync_to_async(lambda: ivan.user)())
    assert status == 403


async def test_a_reconnecting_client_catches_up_on_what_it_may_see(
    alice, carol, billing_ticket, tech_ticket, push_new_events
):
    async with agent_socket(alice, hello=False) as ws:
        last_seen = (await ws.receive_json_from(timeout=10))["last_event_id"]
    # While alice is away: events on her team's ticket and on another team's, and no fan-out reaches her.
    missed = [await note_on(billing_ticket, carol), await note_on(tech_ticket, carol)]
    missed.append(await note_on(billing_ticket, carol))
    await push_new_events()

    async with agent_socket(alice, f"last_event_id={last_seen}", hello=False) as ws:
        hello = await ws.receive_json_from(timeout=10)
        replayed = [await ws.receive_json_from(timeout=10) for _ in range(2)]
        done = await ws.receive_json_from(timeout=10)

    assert hello == {"type": "hello", "last_event_id": missed[-1]}
    assert [(event["type"], event["id"]) for event in replayed] == [
        ("event", missed[0]),
        ("event", missed[2]),
    ]
    assert done == {"type": "caught_up", "last_event_id": missed[-1]}


async def test_a_client_that_missed_too_much_is_told_to_reload(alice, carol, billing_ticket, monkeypatch):
    monkeypatch.setattr(catchup, "MISSED_EVENTS_LIMIT", 2)
    async with agent_socket(alice, hello=False) as ws:
        last_seen = (await ws.receive_json_from(timeout=10))["last_event_id"]
    for _ in range(3):
        newest = await note_on(billing_ticket, carol)

    async with agent_socket(alice, f"last_event_id={last_seen}") as ws:
        assert await ws.receive_json_from(timeout=10) == {"type": "resync", "last_event_id": newest}


async def test_what_a_client_sends_is_ignored_and_the_stream_goes_on(
    alice, carol, billing_ticket, push_new_events
):
    async with agent_socket(alice) as ws:
        await ws.send_to(text_data='{"type": "reply", "ticket": 1, "text": "hi"}')
        await ws.send_to(text_data="not json \x00")
        await ws.send_to(bytes_data=b"\xff" * 100)
        marker = await note_on(billing_ticket, carol)
        await push_new_events()

        assert [event["id"] for event in await events_until(ws, marker)] == [marker]


async def test_an_old_socket_is_closed_so_the_client_reconnects_and_access_is_checked_again(alice, settings):
    settings.REALTIME_SOCKET_MAX_AGE = 0.2
    async with agent_socket(alice) as ws:
        closed = await ws.receive_output(timeout=10)

    assert closed == {"type": "websocket.close", "code": RECONNECT}


def test_the_channel_layer_waits_out_its_own_blocking_reads():
    # An idle process waits on Redis with BZPOPMIN for brpop_timeout seconds at a time; a socket timeout no
    # longer than that broke the read now and then and dropped the socket that was waiting on it.
    layer = get_channel_layer()
    assert all(host["socket_timeout"] > layer.brpop_timeout for host in layer.hosts)
