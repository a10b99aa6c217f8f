"""The PDF of each sample customer's invoice, read back with pypdf: every figure it prints is
the billing core's, exactly (the taxes per rate as stored, never computed again), in the
customer's language and currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.documents.pdf import render_documents
from connector.settings import Settings
from connector.sync.corrections import credit_invoice

D = Decimal


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def render(factory: sessionmaker[Session], settings: Settings, number: str) -> str:
    with factory() as session:
        document_id = session.scalars(
            select(tables.Document.id).where(tables.Document.number == number)
        ).one()
        [pdf] = render_documents(session, [document_id], settings)
    return pdf_text(pdf.content)


def stored_taxes(factory: sessionmaker[Session], number: str) -> list[tuple[Decimal, ...]]:
    """(rate, taxable, tax) of each rate, as the billing core stored them."""
    with factory() as session:
        rows = session.execute(
            select(tables.DocumentTax.rate, tables.DocumentTax.taxable, tables.DocumentTax.tax)
            .join(tables.Document)
            .where(tables.Document.number == number)
        )
        return sorted((tuple(row) for row in rows), reverse=True)


def stored_totals(factory: sessionmaker[Session], number: str) -> tuple[Decimal, ...]:
    with factory() as session:
        row = session.execute(
            select(
                tables.Document.subtotal, tables.Document.tax_total, tables.Document.total
            ).where(tables.Document.number == number)
        ).one()
        return tuple(row)


def between(text: str, first: str, last: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i, line in enumerate(lines) if i >= start and line.startswith(last))
    return lines[start : end + 1]


def test_us_invoice(
    factory: sessionmaker[Session], doc_settings: Settings, samples: dict[str, str]
) -> None:
    number = samples["us"]
    assert stored_totals(factory, number) == (D("469.99"), D("41.71"), D("511.70"))
    assert stored_taxes(factory, number) == [(D("8.875"), D("469.99"), D("41.71"))]
    text = render(factory, doc_settings, number)
    assert between(text, "Invoice", "Date due") == [
        "Invoice",
        f"Number {number}",
        "Date of issue 1 Jan 2026",
        "Date due 31 Jan 2026",
    ]
    assert between(text, "BILL TO", "United States") == [
        "BILL TO",
        "Acme Robotics Inc.",
        "500 Fifth Avenue",
        "Suite 12",
        "New York, NY 10110",
        "United States",
    ]
    assert between(text, "$511.70 due", "Balance due") == [
        "$511.70 due 31 Jan 2026",
        "Amounts in USD",
        "Description Qty Unit price Discount Tax Amount",
        "Seats",
        "Service period: 1 Jan 2026 – 31 Jan 2026",
        "24 $12.50 8.875% $300.00",
        "Premium support",
        "Service period: 1 Jan 2026 – 31 Jan 2026",
        "1 $199.99 15% 8.875% $169.99",
        "Total before discounts $499.99",
        "Discounts −$30.00",
        "Subtotal $469.99",
        "Tax 8.875% on $469.99 $41.71",
        "Total $511.70",
        "Amount paid $0.00",
        "Balance due $511.70",
    ]
    assert between(text, "Payment instructions", "Please pay") == [
        "Payment instructions",
        f"Please pay $511.70 by 31 Jan 2026, quoting {number}.",
    ]
    assert "Reverse charge" not in text


def test_uk_invoice_shows_vat_and_both_tax_ids(
    factory: sessionmaker[Session], doc_settings: Settings, samples: dict[str, str]
) -> None:
    number = samples["uk"]
    assert stored_taxes(factory, number) == [(D("20"), D("917.25"), D("183.45"))]
    text = render(factory, doc_settings, number)
    assert "VAT / tax ID: GB980780684" in text.splitlines()
    assert "VAT / tax ID: US-EIN 12-3456789" in text.splitlines()
    assert between(text, "BILL TO", "VAT / tax ID: GB") == [
        "BILL TO",
        "Brightwater Analytics Ltd",
        "14 Bishopsgate",
        "London",
        "EC2N 4BQ",
        "United Kingdom",
        "VAT / tax ID: GB980780684",
    ]
    assert between(text, "Subtotal", "Balance due") == [
        "Subtotal £917.25",
        "VAT 20% on £917.25 £183.45",
        "Total £1,100.70",
        "Amount paid £0.00",
        "Balance due £1,100.70",
    ]


def test_eu_reverse_charge_invoice_carries_the_legal_note(
    factory: sessionmaker[Session], doc_settings: Settings, samples: dict[str, str]
) -> None:
    number = samples["de"]
    assert stored_taxes(factory, number) == [(D("0"), D("1475.00"), D("0.00"))]
    text = render(factory, doc_settings, number)
    assert "VAT / tax ID: DE136695976" in text.splitlines()
    assert "VAT / tax ID: US-EIN 12-3456789" in text.splitlines()
    assert between(text, "Total before discounts", "Reverse charge: VAT") == [
        "Total before discounts €1,600.00",
        "Discounts −€125.00",
        "Subtotal €1,475.00",
        "Reverse charge 0% on €1,475.00 €0.00",
        "Total €1,475.00",
        "Amount paid €0.00",
        "Balance due €1,475.00",
        "Reverse charge: VAT to be accounted for by the recipient "
        "(Article 196, Council Directive 2006/112/EC)",
    ]
    assert "10117 Berlin" in text.splitlines()


def test_japanese_qualified_invoice(
    factory: sessionmaker[Session], doc_settings: Settings, samples: dict[str, str]
) -> None:
    number = samples["jp"]
    # Tax rounded once per rate and document: 8 % of 3,520 is 281.6 -> 282, where each line
    # rounded alone would give 241 + 40 = 281.
    assert stored_taxes(factory, number) == [
        (D("10"), D("77700"), D("7770")),
        (D("8"), D("3520"), D("282")),
    ]
    assert stored_totals(factory, number) == (D("81220"), D("8052"), D("89272"))
    text = render(factory, doc_settings, number)
    assert between(text, "請求書", "お支払期限") == [
        "請求書",
        "適格請求書",
        f"請求書番号 {number}",
        "発行日 2026年1月1日",
        "お支払期限 2026年1月31日",
    ]
    assert between(text, "ご請求先", "日本") == [
        "ご請求先",
        "株式会社さくらデータ 御中",
        "〒100-6690",
        "東京都千代田区",
        "丸の内一丁目9番2号 グラントウキョウサウスタワー",
        "日本",
    ]
    assert "登録番号: T5835678256246" in text.splitlines()
    assert between(text, "ご請求金額", "※は軽減税率") == [
        "ご請求金額 ￥89,272（お支払期限 2026年1月31日）",
        "通貨: JPY",
        "品目 数量 単価 税率 金額（税抜）",
        "クラウド利用料",
        "期間: 2026年1月1日 – 2026年1月31日",
        "1 ￥48,000 10% ￥48,000",
        "ユーザーライセンス",
        "期間: 2026年1月1日 – 2026年1月31日",
        "15 ￥1,980 10% ￥29,700",
        "会議用軽食（飲食料品） ※",
        "期間: 2026年1月1日 – 2026年1月31日",
        "3 ￥1,005 8% ￥3,015",
        "お茶・飲料 ※",
        "期間: 2026年1月1日 – 2026年1月31日",
        "1 ￥505 8% ￥505",
        "小計（税抜） ￥81,220",
        "10%対象 ￥77,700\u3000消費税 ￥7,770",
        "※ 8%対象 ￥3,520\u3000消費税 ￥282",
        "合計（税込） ￥89,272",
        "お支払済額 ￥0",
        "ご請求残額 ￥89,272",
        "※は軽減税率（8%）対象品目です。",
    ]


def test_credit_note_names_the_invoice_it_corrects(
    factory: sessionmaker[Session], doc_settings: Settings, samples: dict[str, str]
) -> None:
    credited = credit_invoice(
        factory, doc_settings, samples["uk"], reason="outage", on=date(2026, 1, 20), amount="100"
    )
    number = credited.credit_note.number
    text = render(factory, doc_settings, number)
    assert between(text, "Credit note", "Corrects invoice") == [
        "Credit note",
        f"Number {number}",
        "Date of issue 20 Jan 2026",
        f"Corrects invoice {samples['uk']}",
    ]
    assert between(text, "Subtotal", "Reason") == [
        "Subtotal £100.00",
        "VAT 20% on £100.00 £20.00",
        "Total £120.00",
        f"This credit note reduces what invoice {samples['uk']} owes.",
        "Reason: outage",
    ]
    with pytest.raises(StopIteration):
        between(text, "Payment instructions", "Please pay")
