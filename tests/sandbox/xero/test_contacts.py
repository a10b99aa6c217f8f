"""Contacts: PUT creates, POST creates or updates, uniqueness, currencies, GET filters."""

from __future__ import annotations

from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, contact_body, messages

NAME_TAKEN = (
    "The contact name {} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)


def test_create(api: Api, xero_sandbox: XeroSandbox) -> None:
    element = contact_body(
        7,
        TaxNumber="US-123",
        Addresses=[{"AddressType": "STREET", "Country": "US"}],
    )
    response = api.put("Contacts", {"Contacts": [element]}, headers={"Idempotency-Key": "c-7"})
    assert response.status_code == 200
    [created] = body(response)["Contacts"]
    contact_id = created["ContactID"]
    stored = xero_sandbox.store.contacts[contact_id]
    assert stored == {k: v for k, v in created.items() if k != "StatusAttributeString"}
    assert created["StatusAttributeString"] == "OK"
    assert (created["Name"], created["ContactNumber"], created["ContactStatus"]) == (
        "Customer 7",
        "CUST-7",
        "ACTIVE",
    )
    assert created["DefaultCurrency"] == "USD"
    assert created["TaxNumber"] == "US-123"
    assert created["Addresses"] == [{"AddressType": "STREET", "Country": "US"}]
    assert created["UpdatedDateUTC"].endswith("+0000)/")


def test_names_are_unique_among_active_contacts_in_any_case(api: Api) -> None:
    api.contact(1, Name="Acme Corp")
    response = api.put(
        "Contacts?summarizeErrors=false",
        {"Contacts": [contact_body(2, Name="ACME corp"), contact_body(3, Name="Acme Corp.")]},
    )
    first, second = body(response)["Contacts"]
    assert messages(first) == [NAME_TAKEN.format("ACME corp")]
    assert first["StatusAttributeString"] == "ERROR"
    assert first["HasValidationErrors"] is True
    assert second["StatusAttributeString"] == "OK"


def test_names_repeated_within_one_batch(api: Api) -> None:
    response = api.put(
        "Contacts?summarizeErrors=false",
        {"Contacts": [contact_body(1, Name="Twin"), contact_body(2, Name="Twin")]},
    )
    statuses = [c["StatusAttributeString"] for c in body(response)["Contacts"]]
    assert statuses == ["OK", "ERROR"]


def test_contact_numbers_are_unique(api: Api) -> None:
    api.contact(1)
    response = api.put("Contacts?summarizeErrors=false", {"Contacts": [contact_body(1, Name="B")]})
    [refused] = body(response)["Contacts"]
    assert messages(refused) == [
        "The contact number CUST-1 is already assigned to another contact. "
        "The contact number must be unique across all active contacts."
    ]


def test_default_currency_must_be_enabled(api: Api) -> None:
    response = api.put(
        "Contacts?summarizeErrors=false", {"Contacts": [contact_body(1, DefaultCurrency="NZD")]}
    )
    [refused] = body(response)["Contacts"]
    assert messages(refused) == ["The currency NZD is not enabled for this organisation."]


def test_put_refuses_a_contact_id(api: Api) -> None:
    existing = api.contact(1)
    element = contact_body(2, ContactID=existing["ContactID"])
    response = api.put("Contacts?summarizeErrors=false", {"Contacts": [element]})
    [refused] = body(response)["Contacts"]
    assert messages(refused) == ["A ContactID cannot be given when creating a contact: use POST."]


def test_post_updates_by_contact_id_and_creates_without_one(
    api: Api, xero_sandbox: XeroSandbox
) -> None:
    existing = api.contact(1)
    update = contact_body(1, Name="Customer One Ltd", ContactID=existing["ContactID"])
    response = api.post("Contacts", {"Contacts": [update, contact_body(2)]})
    assert response.status_code == 200
    updated, created = body(response)["Contacts"]
    assert updated["ContactID"] == existing["ContactID"]
    assert updated["Name"] == "Customer One Ltd"
    assert updated["UpdatedDateUTC"] != existing["UpdatedDateUTC"]
    assert created["ContactNumber"] == "CUST-2"
    assert len(xero_sandbox.store.contacts) == 2
    # the old name is free again, the new one is taken
    assert api.contact(3, Name="Customer 1")["Name"] == "Customer 1"
    missing = contact_body(4, ContactID="00000000-0000-4000-8000-000000000000")
    refused = body(api.post("Contacts?summarizeErrors=false", {"Contacts": [missing]}))
    assert messages(refused["Contacts"][0]) == [
        "The document with the supplied id was not found for this endpoint."
    ]


def test_get_by_contact_number_ids_and_pages(api: Api) -> None:
    created = [api.contact(n) for n in range(1, 4)]
    where = 'ContactNumber=="CUST-1" OR ContactNumber=="CUST-3"'
    found = body(api.get("Contacts", params={"where": where}))["Contacts"]
    assert [c["ContactNumber"] for c in found] == ["CUST-1", "CUST-3"]
    by_id = body(api.get("Contacts", params={"IDs": created[1]["ContactID"]}))["Contacts"]
    assert [c["Name"] for c in by_id] == ["Customer 2"]
    paged = body(api.get("Contacts", params={"page": "2", "pageSize": "2"}))
    assert paged["pagination"] == {"page": 2, "pageSize": 2, "pageCount": 2, "itemCount": 3}
    assert [c["ContactNumber"] for c in paged["Contacts"]] == ["CUST-3"]
    single = body(api.get(f"Contacts/{created[0]['ContactID']}"))["Contacts"]
    assert [c["ContactNumber"] for c in single] == ["CUST-1"]
    assert "pagination" not in body(api.get("Contacts"))
