"""tickets.lifecycle.next_state: every status transition, whoever causes it, from one table."""

from datetime import UTC, datetime

import pytest

from tickets.exceptions import InvalidTransition, TicketClosed
from tickets.lifecycle import Happening, TicketState, next_state
from tickets.models import Status

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)

NEW, OPEN, PENDING, ON_HOLD, SOLVED, CLOSED = (
    Status.NEW,
    Status.OPEN,
    Status.PENDING,
    Status.ON_HOLD,
    Status.SOLVED,
    Status.CLOSED,
)
REFUSED = "refused"
FOLLOW_UP = "follow-up ticket"


def state(status: str) -> TicketState:
    """A ticket in `status` with the timestamps that status implies."""
    return TicketState(
        status,
        solved_at=EARLIER if status in (SOLVED, CLOSED) else None,
        closed_at=EARLIER if status == CLOSED else None,
    )


# (current status, what happened, status asked for) → status after, or REFUSED / FOLLOW_UP.
TRANSITIONS = [
    # A customer writes: a ticket waiting on them (or solved) waits on us again; closed starts a follow-up.
    (NEW, Happening.CUSTOMER_MESSAGE, None, NEW),
    (OPEN, Happening.CUSTOMER_MESSAGE, None, OPEN),
    (PENDING, Happening.CUSTOMER_MESSAGE, None, OPEN),
    (ON_HOLD, Happening.CUSTOMER_MESSAGE, None, OPEN),
    (SOLVED, Happening.CUSTOMER_MESSAGE, None, OPEN),
    (CLOSED, Happening.CUSTOMER_MESSAGE, None, FOLLOW_UP),
    # An answer that could not be delivered: the customer still waits, so we do.
    (NEW, Happening.DELIVERY_FAILED, None, NEW),
    (OPEN, Happening.DELIVERY_FAILED, None, OPEN),
    (PENDING, Happening.DELIVERY_FAILED, None, OPEN),
    (ON_HOLD, Happening.DELIVERY_FAILED, None, ON_HOLD),
    (SOLVED, Happening.DELIVERY_FAILED, None, OPEN),
    (CLOSED, Happening.DELIVERY_FAILED, None, CLOSED),
    # An agent's answer without a status: it opens a new ticket and leaves others as they are.
    (NEW, Happening.AGENT_REPLY, None, OPEN),
    (OPEN, Happening.AGENT_REPLY, None, OPEN),
    (PENDING, Happening.AGENT_REPLY, None, PENDING),
    (ON_HOLD, Happening.AGENT_REPLY, None, ON_HOLD),
    (SOLVED, Happening.AGENT_REPLY, None, SOLVED),
    (CLOSED, Happening.AGENT_REPLY, None, REFUSED),
    (NEW, Happening.AGENT_REPLY, PENDING, PENDING),
    (SOLVED, Happening.AGENT_REPLY, OPEN, OPEN),
    (CLOSED, Happening.AGENT_REPLY, OPEN, REFUSED),
    (OPEN, Happening.STATUS_SET, None, REFUSED),
    (OPEN, Happening.STATUS_SET, "archived", REFUSED),
] + [
    # Setting a status: anything but back to new, and nothing once closed.
    (
        current,
        Happening.STATUS_SET,
        asked,
        REFUSED if current == CLOSED and asked != CLOSED else REFUSED if asked == NEW != current else asked,
    )
    for current in Status.values
    for asked in Status.values
]


@pytest.mark.parametrize(("current", "happened", "asked", "after"), TRANSITIONS)
def test_every_transition(current: str, happened: Happening, asked: str | None, after: str) -> None:
    if after == REFUSED:
        with pytest.raises((InvalidTransition, TicketClosed)):
            next_state(state(current), happened, now=NOW, status=asked)
        return
    transition = next_state(state(current), happened, now=NOW, status=asked)
    if after == FOLLOW_UP:
        assert transition.follow_up and transition.state == state(current) and not transition.changes
        return
    assert not transition.follow_up
    assert transition.state.status == after
    if after == current:
        assert transition.state == state(current) and transition.changes == {}
    else:
        assert transition.changes["status"] == [current, after]


@pytest.mark.parametrize(
    ("current", "asked", "solved_at", "closed_at", "solved_change"),
    [
        (OPEN, SOLVED, NOW, None, [None, NOW.isoformat()]),
        (SOLVED, OPEN, None, None, [EARLIER.isoformat(), None]),
        (SOLVED, PENDING, None, None, [EARLIER.isoformat(), None]),
        (SOLVED, CLOSED, EARLIER, NOW, None),  # closing keeps when it was solved
        (OPEN, CLOSED, NOW, NOW, None),  # closing an unsolved ticket solves it too
        (PENDING, ON_HOLD, None, None, None),
    ],
)
def test_solved_and_closed_times_stay_true_to_the_status(current, asked, solved_at, closed_at, solved_change):
    transition = next_state(state(current), Happening.STATUS_SET, now=NOW, status=asked)

    assert (transition.state.solved_at, transition.state.closed_at) == (solved_at, closed_at)
    assert transition.changes.get("solved_at") == solved_change


def test_a_customer_reopening_a_solved_ticket_clears_when_it_was_solved():
    transition = next_state(state(SOLVED), Happening.CUSTOMER_MESSAGE, now=NOW)

    assert transition.state == TicketState(OPEN, solved_at=None, closed_at=None)
    assert transition.changes == {"status": [SOLVED, OPEN], "solved_at": [EARLIER.isoformat(), None]}
