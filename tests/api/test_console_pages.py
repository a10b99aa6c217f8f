"""The console's pages through the real server, on real billing data: the overview, the
records waiting, the outbox, the MRR charts, the invoices and a PDF. Text is escaped; the key
is never shown."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.api.console import documents
from connector.billing.periods import add_months
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings, WebhooksSettings
from connector.sync.webhooks import deliver
from tests import builders
from tests.api import console_data
from tests.api.conftest import Served
from tests.api.test_console import SECURITY_HEADERS, page, sign_in
from tests.sync.test_webhooks import add
from tests.webhook_receiver import receiving


@pytest.fixture
def data(
    served: Served, factory: sessionmaker[Session], settings: Settings
) -> console_data.ConsoleData:
    found = console_data.build(factory, settings)
    answer = sign_in(served, served.key(name="ops laptop"))
    assert answer.status_code == 303
    return found


def text_of(html: str) -> str:
    """The page's text, tags removed and spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def rows_of(html: str, table: int = 0) -> list[list[str]]:
    """The body rows of the ``table``-th table of the page, as the text of their cells."""
    body = re.findall(r"<tbody>(.*?)</tbody>", html, re.S)[table]
    return [
        [text_of(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_the_overview_shows_stages_quota_and_what_waits(
    served: Served, data: console_data.ConsoleData
) -> None:
    answer = page(served, "/")
    assert answer.status_code == 200
    assert {name: answer.headers[name] for name in SECURITY_HEADERS} == SECURITY_HEADERS
    text = text_of(answer.text)
    assert "This instance is standby" in text
    assert (
        "Needs a person 1 record quarantined (waiting for a fix) 1 record held for review" in text
    )
    stages = rows_of(answer.text)
    assert [row[0] for row in stages] == [
        "pull",
        "payments",
        "bill",
        "revenue",
        "push",
        "dunning",
        "send",
        "webhooks",
        "writeback",
    ]
    bill = stages[2]
    assert (bill[1], bill[4]) == ("15m", "ok")
    assert stages[0][1:5] == ["5m", "never", "", "never"]
    assert stages[3][1] == "10 0 * * *"
    assert stages[3][5].endswith("00:10 UTC")
    assert "Connector calls today 42 Org usage (24 h) 900 of 15,000" in text
    assert "6.0% of the org's daily limit" in text
    assert '<meter min="0" max="15000"' in answer.text


def test_the_waiting_records_with_their_reasons_and_salesforce_links(
    served: Served, data: console_data.ConsoleData
) -> None:
    answer = page(served, "/waiting")
    assert answer.status_code == 200
    # the record's name is text: escaped, never markup
    assert "<script>" not in answer.text
    assert "Renewal &lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in answer.text
    rows = rows_of(answer.text)
    assert [(row[0], row[2]) for row in rows] == [
        ("quarantined", console_data.QUARANTINED_REASON),
        ("held", console_data.HELD_REASON),
    ]
    assert rows[0][1].startswith(
        console_data.QUARANTINED_NAME + " Opportunity · 006000000000001AAA"
    )
    assert 'href="https://login.salesforce.com/?startURL=%2F006000000000001AAA"' in answer.text
    held = page(served, "/waiting?state=held")
    assert [row[2] for row in rows_of(held.text)] == [console_data.HELD_REASON]


def test_links_go_to_the_org_when_its_url_is_known(
    served: Served, data: console_data.ConsoleData
) -> None:
    settings = served.instance.settings
    served.instance.settings = settings.model_copy(
        update={
            "salesforce": settings.salesforce.model_copy(
                update={"instance_url": "https://acme.my.salesforce.com"}
            )
        }
    )
    answer = page(served, "/waiting?state=quarantined")
    assert 'href="https://acme.my.salesforce.com/006000000000001AAA"' in answer.text


def test_nothing_waiting_says_so(served: Served) -> None:
    sign_in(served, served.key())
    text = text_of(page(served, "/waiting").text)
    assert "Nothing waits here Every record pulled from Salesforce was applied." in text


def test_the_outbox_of_every_target(served: Served, data: console_data.ConsoleData) -> None:
    answer = page(served, "/outbox")
    assert answer.status_code == 200
    text = text_of(answer.text)
    invoices = len(data.invoices)  # 24: each waits for the ledger, e-mail and rendering
    assert f"Accounting · ledger {invoices} 0 parked" in text
    assert f"Salesforce write-back {invoices + 4 + 4} 0 due later" in text
    assert f"E-mail {invoices} 0 refused · 0 without an address" in text
    assert f"PDF rendering {invoices} 0 could not be rendered" in text
    assert rows_of(answer.text, 0) == [["ledger", str(invoices), "0", "local"]]
    assert rows_of(answer.text, 1) == [
        ["customer", "4"],
        ["document", str(invoices)],
        ["subscription", "4"],
    ]


def test_the_mrr_charts_per_currency(served: Served, data: console_data.ConsoleData) -> None:
    answer = page(served, "/mrr")
    assert answer.status_code == 200
    html = answer.text
    assert [code for code in re.findall(r'<h2 id="currency-(\w+)">', html)] == ["EUR", "USD"]
    assert '<title id="mrr-USD-title">MRR in USD by month</title>' in html
    usd = html[html.index('id="currency-USD"') :]
    usd_mrr = usd[: usd.index("</svg>")]
    bars = re.findall(r'<rect class="bar"[^>]*><title>([^<]+)</title>', usd_mrr)
    assert len(bars) == 12
    # Globex from 8 months back (100), Umbrella 6 to 2 (150), Initech from 5 (250)
    amounts = ["0.00", "100.00", "100.00", "250.00", "500.00", "500.00", "500.00", "350.00"]
    amounts += ["350.00", "350.00"]
    assert bars[-10:] == [
        f"{month}: {amount} USD" for month, amount in zip(_months(data, 10), amounts, strict=True)
    ]
    figures = rows_of(usd, 0)
    assert figures[-1][:2] == [_months(data, 1)[0], "350.00"]
    churned = figures[-3]  # the month Umbrella's subscription ended
    assert (churned[1], churned[6], churned[7]) == ("350.00", "150.00", "-150.00")


def _months(data: console_data.ConsoleData, count: int) -> list[str]:
    return [
        add_months(data.first_of_month, -back).strftime("%B %Y")
        for back in range(count - 1, -1, -1)
    ]


def test_no_revenue_yet_is_an_empty_state(served: Served) -> None:
    sign_in(served, served.key())
    text = text_of(page(served, "/mrr").text)
    assert "No recurring revenue yet" in text


def test_invoices_filtered_by_status_and_customer_a_page_at_a_time(
    served: Served, data: console_data.ConsoleData, factory: sessionmaker[Session]
) -> None:
    answer = page(served, "/invoices")
    rows = rows_of(answer.text)
    assert [row[0] for row in rows] == list(reversed(data.invoices))
    assert rows[0][1:] == [
        "Acme GmbH",
        str(data.today),
        rows[0][3],
        "119.00 EUR",
        "119.00 EUR",
        "open",
    ]
    with factory() as session:
        initech = session.scalar(
            select(tables.Customer.id).where(tables.Customer.name == "Initech")
        )
    mine = rows_of(page(served, f"/invoices?customer={initech}&status=open").text)
    assert {row[1] for row in mine} == {"Initech"}
    assert len(mine) == 6  # July to December
    assert "No invoice or credit note matches these filters." in text_of(
        page(served, "/invoices?status=paid").text
    )
    refused = page(served, "/invoices?status=lost")
    assert refused.status_code == 422


def test_invoices_page_by_page(
    served: Served, data: console_data.ConsoleData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "PAGE", 10)
    first = page(served, "/invoices?status=open")
    older = re.search(r'<a href="([^"]+)">Older →</a>', first.text)
    assert older
    second = page(served, unescape(older.group(1)))
    third_link = re.search(r'<a href="([^"]+)">Older →</a>', second.text)
    assert third_link
    third = page(served, unescape(third_link.group(1)))
    numbers = [row[0] for text in (first, second, third) for row in rows_of(text.text)]
    assert numbers == list(reversed(data.invoices))
    assert "Older →" not in third.text
    assert '<a href="/invoices?status=open">← Newest</a>' in third.text


def test_an_invoice_with_its_lines_taxes_and_pdf(
    served: Served, data: console_data.ConsoleData
) -> None:
    number = data.invoices[-1]  # Acme GmbH, December, German VAT
    answer = page(served, f"/invoices/{number}")
    assert answer.status_code == 200
    text = text_of(answer.text)
    assert f"Invoice {number} open" in text
    lines = rows_of(answer.text)
    month = data.first_of_month
    assert lines == [
        [
            "1",
            f"Seats × 5, {month}..{_month_end(data)}",
            f"{month} – {_month_end(data)}",
            "5",
            "19%",
            "100.00",
        ]
    ]
    assert "Subtotal 100.00 EUR Tax DE 19% on 100.00 EUR 19.00 EUR Total 119.00 EUR" in text
    assert "Still due 119.00 EUR" in text
    assert "Not rendered yet" in text

    pdf = page(served, f"/invoices/{number}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'inline; filename="{number}.pdf"'
    assert pdf.content.startswith(b"%PDF-")
    again = page(served, f"/invoices/{number}/pdf")
    assert again.content == pdf.content  # the kept one
    assert "Not rendered yet" not in page(served, f"/invoices/{number}").text


def _month_end(data: console_data.ConsoleData) -> str:
    return str(add_months(data.first_of_month, 1) - timedelta(days=1))


def test_an_unknown_invoice_is_a_page_not_found(
    served: Served, data: console_data.ConsoleData
) -> None:
    for path in ("/invoices/INV-999999", "/invoices/INV-999999/pdf"):
        answer = page(served, path)
        assert answer.status_code == 404
        assert "There is no invoice or credit note numbered INV-999999." in text_of(answer.text)


def test_the_webhook_deliveries_page_without_endpoints_says_how_to_add_one(
    served: Served, data: console_data.ConsoleData
) -> None:
    answer = page(served, "/webhooks")
    assert answer.status_code == 200
    assert "No webhook endpoints Add one with connector webhook add URL" in text_of(answer.text)


def test_the_webhook_deliveries_page_shows_endpoints_and_deliveries_with_their_answers(
    served: Served, factory: sessionmaker[Session], settings: Settings
) -> None:
    hook_settings = settings.model_copy(
        update={"webhooks": WebhooksSettings(retry_initial_seconds=0)}
    )
    with receiving() as receiver:
        receiver.secret = add(factory, hook_settings, receiver.url)
        receiver.answers = [503]
        with transaction(factory) as session:
            builders.customer(session, "C1")
        deliver(factory, hook_settings)  # refused once: pending, failing
        with transaction(factory) as session:
            builders.customer(session, "C2")
        deliver(factory, hook_settings)  # both delivered now, in order
        url = receiver.url
    assert sign_in(served, served.key(name="ops laptop")).status_code == 303

    answer = page(served, "/webhooks")

    assert answer.status_code == 200
    assert rows_of(answer.text, 0) == [[f"1 {url}", "active", "0", "0", "2", "0"]]
    deliveries = rows_of(answer.text, 1)
    assert [row[0].split(" ")[0] for row in deliveries] == ["customer.created"] * 2
    assert [row[1:4] for row in deliveries] == [
        ["delivered", "1", "HTTP 200"],
        ["delivered", "2", "HTTP 200"],
    ]
    assert all(re.fullmatch(r"\d+ ms", row[4]) for row in deliveries)
    one = page(served, "/webhooks?endpoint=1")
    assert len(rows_of(one.text, 1)) == 2
    assert "Latest deliveries to endpoint 1" in text_of(one.text)
