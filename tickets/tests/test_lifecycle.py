"""tickets.lifecycle: one locked change, one ticket.updated event (before → after), the status rules."""

import pytest

from conftest import unique
from helpdesk import events
from tickets import lifecycle
from tickets.exceptions import InvalidTransition, NotAnAgent, TicketClosed
from tickets.models import Channel, Customer, Priority, Role, Status, Ticket, TicketEvent, User

pytestmark = pytest.mark.django_db


def make_ticket(customer: Customer, **fields) -> Ticket:
    fields.setdefault("subject", unique("Ticket"))
    fields.setdefault("channel", Channel.EMAIL)
    return Ticket.objects.create(customer=customer, **fields)


def test_update_changes_several_fields_in_one_event(ivan, alice, carol, billing, captured_events):
    ticket = make_ticket(ivan, status=Status.OPEN, subject="Не приходит счёт")

    event = lifecycle.update(
        ticket,
        actor=carol,
        status=Status.PENDING,
        priority=Priority.HIGH,
        assignee=alice,
        team=billing,
        tags=["vip"],
        subject="Счёт за март",
        custom_fields={"order": "1009"},
    )

    assert event.name == events.TICKET_UPDATED and event.actor == carol
    assert event.changes == {
        "status": ["open", "pending"],
        "priority": ["normal", "high"],
        "assignee": [None, alice.pk],
        "team": [None, billing.pk],
        "tags": [[], ["vip"]],
        "subject": ["Не приходит счёт", "Счёт за март"],
        "custom_fields": [{}, {"order": "1009"}],
    }
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.status, stored.priority, stored.assignee, stored.team) == (
        "pending",
        "high",
        alice,
        billing,
    )
    assert (stored.tags, stored.subject, stored.custom_fields) == (["vip"], "Счёт за март", {"order": "1009"})
    assert stored.updated_at == event.created_at
    assert TicketEvent.objects.filter(ticket=ticket).count() == 1
    assert captured_events.names == [events.TICKET_UPDATED]
    assert captured_events.published[0]["id"] == event.pk


def test_the_callers_ticket_object_shows_the_change(ivan, alice):
    ticket = make_ticket(ivan)

    lifecycle.assign(ticket, agent=alice, actor=alice)

    assert ticket.assignee == alice


def test_update_that_changes_nothing_returns_none_and_writes_nothing(ivan, alice, billing, captured_events):
    ticket = make_ticket(
        ivan,
        status=Status.OPEN,
        priority=Priority.HIGH,
        assignee=alice,
        team=billing,
        tags=["late_payment", "vip"],
    )
    before = Ticket.objects.get(pk=ticket.pk).updated_at

    event = lifecycle.update(
        ticket,
        actor=alice,
        status=Status.OPEN,
        priority=Priority.HIGH,
        assignee=alice,
        team=billing,
        tags=["VIP", " Late Payment "],
        subject=ticket.subject,
        custom_fields={},
    )

    assert event is None
    assert Ticket.objects.get(pk=ticket.pk).updated_at == before
    assert not TicketEvent.objects.exists()
    assert captured_events.names == []


def test_update_without_fields_is_a_no_op(ivan, alice):
    ticket = make_ticket(ivan)

    assert lifecycle.update(ticket, actor=alice) is None
    assert not TicketEvent.objects.exists()


@pytest.mark.parametrize(
    "tags, normalized",
    [
        (["VIP", "vip ", " Vip"], ["vip"]),
        (["Late  Payment", "refund"], ["late_payment", "refund"]),
        (["b", "a", "", "   "], ["a", "b"]),
        ([], []),
    ],
)
def test_tags_are_lower_case_words_each_once_sorted(ivan, alice, tags, normalized):
    ticket = make_ticket(ivan, tags=["old"])

    lifecycle.update(ticket, actor=alice, tags=tags)

    assert Ticket.objects.get(pk=ticket.pk).tags == normalized
    assert lifecycle.normalize_tags(tags) == normalized


def test_solving_sets_solved_at_and_reopening_clears_it(ivan, alice):
    ticket = make_ticket(ivan, status=Status.OPEN)

    solved = lifecycle.change_status(ticket, status=Status.SOLVED, actor=alice)
    ticket.refresh_from_db()
    solved_at = ticket.solved_at
    reopened = lifecycle.change_status(ticket, status=Status.OPEN, actor=alice)
    ticket.refresh_from_db()

    assert solved_at is not None
    assert solved.changes == {"status": ["open", "solved"], "solved_at": [None, solved_at.isoformat()]}
    assert ticket.solved_at is None
    assert reopened.changes == {"status": ["solved", "open"], "solved_at": [solved_at.isoformat(), None]}


def test_closing_a_solved_ticket_keeps_when_it_was_solved(ivan, alice):
    ticket = make_ticket(ivan, status=Status.OPEN)
    lifecycle.change_status(ticket, status=Status.SOLVED, actor=alice)
    solved_at = Ticket.objects.get(pk=ticket.pk).solved_at

    lifecycle.change_status(ticket, status=Status.CLOSED, actor=alice)

    closed = Ticket.objects.get(pk=ticket.pk)
    assert closed.status == Status.CLOSED
    assert closed.solved_at == solved_at
    assert closed.closed_at is not None and closed.closed_at >= solved_at


def test_closing_an_open_ticket_sets_solved_and_closed_times(ivan, alice):
    ticket = make_ticket(ivan, status=Status.OPEN)

    lifecycle.change_status(ticket, status=Status.CLOSED, actor=alice)

    closed = Ticket.objects.get(pk=ticket.pk)
    assert closed.closed_at is not None and closed.solved_at == closed.closed_at


@pytest.mark.parametrize("status", [Status.OPEN, Status.PENDING, Status.SOLVED, Status.NEW])
def test_closed_is_final(ivan, alice, status):
    ticket = make_ticket(ivan, status=Status.CLOSED)

    with pytest.raises(InvalidTransition) as refused:
        lifecycle.change_status(ticket, status=status, actor=alice)

    assert refused.value.code == "invalid_transition" and refused.value.http_status == 409
    assert Ticket.objects.get(pk=ticket.pk).status == Status.CLOSED
    assert not TicketEvent.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"priority": Priority.URGENT},
        {"tags": ["late"]},
        {"subject": "Renamed"},
        {"team": "billing"},
        {"assignee": "alice"},
    ],
)
def test_no_field_of_a_closed_ticket_changes(request, ivan, alice, change):
    change = {
        field: request.getfixturevalue(v) if v in ("billing", "alice") else v for field, v in change.items()
    }
    ticket = make_ticket(ivan, status=Status.CLOSED)

    with pytest.raises(TicketClosed) as refused:
        lifecycle.update(ticket, actor=alice, **change)

    assert refused.value.code == "ticket_closed"
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.priority, stored.tags, stored.team, stored.assignee) == (Priority.NORMAL, [], None, None)
    assert not TicketEvent.objects.exists()


def test_setting_a_closed_ticket_to_closed_again_is_a_no_op(ivan, alice):
    ticket = make_ticket(ivan, status=Status.CLOSED)

    assert lifecycle.change_status(ticket, status=Status.CLOSED, actor=alice) is None


@pytest.mark.parametrize("status", [Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.SOLVED])
def test_a_ticket_cannot_go_back_to_new(ivan, alice, status):
    ticket = make_ticket(ivan, status=status)

    with pytest.raises(InvalidTransition):
        lifecycle.change_status(ticket, status=Status.NEW, actor=alice)

    assert Ticket.objects.get(pk=ticket.pk).status == status


def test_a_refused_change_leaves_the_other_fields_alone_too(ivan, alice):
    ticket = make_ticket(ivan, status=Status.OPEN)

    with pytest.raises(InvalidTransition):
        lifecycle.update(ticket, actor=alice, priority=Priority.URGENT, status=Status.NEW)

    assert Ticket.objects.get(pk=ticket.pk).priority == Priority.NORMAL
    assert not TicketEvent.objects.exists()


def test_assigning_and_unassigning_records_user_ids(ivan, alice, carol):
    ticket = make_ticket(ivan)

    assigned = lifecycle.assign(ticket, agent=alice, actor=carol)
    unassigned = lifecycle.assign(ticket, agent=None, actor=carol)

    assert assigned.changes == {"assignee": [None, alice.pk]}
    assert unassigned.changes == {"assignee": [alice.pk, None]}
    assert Ticket.objects.get(pk=ticket.pk).assignee is None


def test_supervisors_can_be_assigned(ivan, carol):
    ticket = make_ticket(ivan)

    lifecycle.assign(ticket, agent=carol, actor=carol)

    assert Ticket.objects.get(pk=ticket.pk).assignee == carol


def test_customers_and_deactivated_agents_cannot_be_assigned(ivan, alice):
    gone = User.objects.create_user("gone", role=Role.AGENT, is_active=False)
    ticket = make_ticket(ivan)

    for not_an_agent in (ivan.user, gone):
        with pytest.raises(NotAnAgent):
            lifecycle.assign(ticket, agent=not_an_agent, actor=alice)

    assert Ticket.objects.get(pk=ticket.pk).assignee is None
    assert not TicketEvent.objects.exists()


def test_a_stale_ticket_object_does_not_undo_a_newer_change(ivan, alice, carol):
    ticket = make_ticket(ivan)
    stale = Ticket.objects.get(pk=ticket.pk)
    lifecycle.update(ticket, actor=carol, priority=Priority.URGENT)

    event = lifecycle.update(stale, actor=alice, tags=["vip"])

    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.priority, stored.tags) == (Priority.URGENT, ["vip"])
    assert event.changes == {"tags": [[], ["vip"]]}
    assert stale.priority == Priority.URGENT


def test_system_changes_have_no_actor(ivan):
    ticket = make_ticket(ivan)

    event = lifecycle.change_status(ticket, status=Status.OPEN, actor=None)

    assert event.actor is None and event.changes == {"status": ["new", "open"]}
