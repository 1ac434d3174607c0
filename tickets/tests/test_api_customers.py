"""The customer API at /api/v1/customers/: list, search, detail with identities and history, create."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tickets.models import Channel, Customer, Identity, Ticket

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/"


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def maria(db) -> Customer:
    customer = Customer.objects.create(name="Maria Schmidt", locale="de")
    Identity.objects.create(customer=customer, channel=Channel.EMAIL, address="maria@example.com")
    Identity.objects.create(customer=customer, channel=Channel.PHONE, address="+4930123456")
    return customer


def test_list_shows_customers_with_their_identities_newest_first(api_client, alice, ivan, maria):
    response = api_client(alice).get(CUSTOMERS)

    assert listed_ids(response) == [maria.pk, ivan.pk]
    row = response.json()["results"][0]
    assert row["name"] == "Maria Schmidt" and row["locale"] == "de"
    assert sorted((identity["channel"], identity["address"]) for identity in row["identities"]) == [
        ("email", "maria@example.com"),
        ("phone", "+4930123456"),
    ]


@pytest.mark.parametrize(
    "query, who",
    [
        ("schmidt", "maria"),
        ("Иван", "ivan"),
        ("MARIA@example.com", "maria"),
        ("+4930123456", "maria"),
        ("  ivan@customer.test  ", "ivan"),
        ("example", None),
        ("nobody", None),
    ],
)
def test_search_by_part_of_the_name_or_a_whole_address(api_client, alice, ivan, maria, query, who):
    response = api_client(alice).get(CUSTOMERS, {"q": query})

    expected = {"maria": [maria.pk], "ivan": [ivan.pk], None: []}[who]
    assert listed_ids(response) == expected


def test_a_customer_matching_twice_is_listed_once(api_client, alice):
    twice = Customer.objects.create(name="Pat Example")
    Identity.objects.create(customer=twice, channel=Channel.EMAIL, address="pat@example.com")
    Identity.objects.create(customer=twice, channel=Channel.WIDGET, address="visitor-pat-0001")

    response = api_client(alice).get(CUSTOMERS, {"q": "pat"})

    assert listed_ids(response) == [twice.pk]


def test_search_with_a_null_character_is_400_not_500(api_client, alice, ivan):
    response = api_client(alice).get(CUSTOMERS, {"q": "iv\x00an"})

    assert response.status_code == 400
    assert "q" in response.json()


def test_list_pages_by_cursor(api_client, alice):
    Customer.objects.bulk_create(Customer(name=f"Bulk {i}") for i in range(60))

    first = api_client(alice).get(CUSTOMERS).json()
    second = api_client(alice).get(first["next"]).json()

    ids = [row["id"] for row in first["results"] + second["results"]]
    assert len(first["results"]) == 50 and second["next"] is None
    assert sorted(ids) == sorted(Customer.objects.values_list("id", flat=True))


def test_detail_has_identities_and_ticket_history_newest_activity_first(api_client, alice, ivan):
    now = timezone.now()
    old = Ticket.objects.create(
        customer=ivan, channel=Channel.EMAIL, subject="Old", updated_at=now - timedelta(days=9)
    )
    recent = Ticket.objects.create(customer=ivan, channel=Channel.EMAIL, subject="Recent", updated_at=now)
    Ticket.objects.create(customer=Customer.objects.create(name="Someone else"), channel=Channel.EMAIL)

    response = api_client(alice).get(f"{CUSTOMERS}{ivan.pk}/")

    assert response.status_code == 200
    detail = response.json()
    assert detail["name"] == "Иван Петров"
    assert [(i["channel"], i["address"]) for i in detail["identities"]] == [("email", "ivan@customer.test")]
    assert [(t["id"], t["subject"]) for t in detail["tickets"]] == [(recent.pk, "Recent"), (old.pk, "Old")]


@pytest.mark.parametrize("customer_id", ["99999999999999999999", "0", "missing"])
def test_unknown_customer_is_404(api_client, alice, ivan, customer_id):
    if customer_id == "missing":
        customer_id = ivan.pk + 1000

    response = api_client(alice).get(f"{CUSTOMERS}{customer_id}/")

    assert response.status_code == 404


def test_create_customer_with_normalized_identities(api_client, alice):
    response = api_client(alice).post(
        CUSTOMERS,
        {
            "name": "Olga Smirnova",
            "locale": "ru",
            "timezone": "Europe/Moscow",
            "notes": "Prefers Telegram",
            "identities": [
                {"channel": "email", "address": "  Olga.Smirnova@Example.COM "},
                {"channel": "phone", "address": "+7 (912) 345-67-89", "display_name": "mobile"},
                {"channel": "telegram", "address": "123456789"},
            ],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == "Olga Smirnova" and created["tickets"] == []
    customer = Customer.objects.get(pk=created["id"])
    assert (customer.locale, customer.timezone, customer.notes) == ("ru", "Europe/Moscow", "Prefers Telegram")
    stored = sorted(customer.identities.values_list("channel", "address", "display_name"))
    assert stored == [
        ("email", "olga.smirnova@example.com", ""),
        ("phone", "+79123456789", "mobile"),
        ("telegram", "123456789", ""),
    ]
    assert sorted(i["address"] for i in created["identities"]) == sorted(address for _, address, _ in stored)


def test_create_customer_without_identities(api_client, alice):
    response = api_client(alice).post(CUSTOMERS, {"name": "Walk-in"}, format="json")

    assert response.status_code == 201
    assert response.json()["identities"] == []


@pytest.mark.parametrize("address", ["ivan@customer.test", "IVAN@Customer.Test", " ivan@customer.test"])
def test_an_address_of_another_customer_is_409_identity_taken(api_client, alice, ivan, address):
    customers_before = Customer.objects.count()

    response = api_client(alice).post(
        CUSTOMERS,
        {
            "name": "Impostor",
            "identities": [
                {"channel": "telegram", "address": "5550001"},
                {"channel": "email", "address": address},
            ],
        },
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "identity_taken"
    assert Customer.objects.count() == customers_before
    assert not Identity.objects.filter(address="5550001").exists()


def test_the_same_address_on_another_channel_is_a_different_identity(api_client, alice):
    Customer.objects.create(name="Widget visitor").identities.create(
        channel=Channel.WIDGET, address="visitor-0001"
    )

    response = api_client(alice).post(
        CUSTOMERS,
        {"name": "API client", "identities": [{"channel": "api", "address": "visitor-0001"}]},
        format="json",
    )

    assert response.status_code == 201


def test_an_address_invalid_for_its_channel_is_400(api_client, alice):
    response = api_client(alice).post(
        CUSTOMERS,
        {"name": "Typo", "identities": [{"channel": "email", "address": "not an email"}]},
        format="json",
    )

    assert response.status_code == 400
    assert "not an email address" in response.json()["identities"]["0"]["address"][0]
    assert not Customer.objects.filter(name="Typo").exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Fax user", "identities": [{"channel": "fax", "address": "123"}]}, "identities"),
        ({"name": "No address", "identities": [{"channel": "email"}]}, "identities"),
        ({"name": "Not a list", "identities": "ivan@customer.test"}, "identities"),
    ],
)
def test_create_with_missing_or_invalid_fields_is_400_with_field_messages(api_client, alice, body, field):
    customers_before = Customer.objects.count()

    response = api_client(alice).post(CUSTOMERS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert Customer.objects.count() == customers_before


def test_create_with_a_malformed_json_body_is_400(api_client, alice):
    response = api_client(alice).post(CUSTOMERS, '{"name": ', content_type="application/json")

    assert response.status_code == 400
