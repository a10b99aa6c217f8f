"""The figures of a document: its lines (product, service period, quantity, unit price,
discount, tax rate, amount) in a table whose headings repeat on every page, then the totals,
with the tax of each rate as the billing core stored it."""

from __future__ import annotations

from decimal import Decimal

from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from connector.billing.vat import EU_MEMBER_STATES
from connector.documents.content import DocumentContent, Line, TaxRate
from connector.documents.formatting import Formats
from connector.documents.page import BODY, MARGIN, RULE, WIDTH, Page
from connector.documents.templates import Labels

REDUCED_RATES = frozenset({Decimal(8)})  # Japan's reduced consumption tax rate
VAT_COUNTRIES = EU_MEMBER_STATES | {"GB", "NO", "CH"}


def reduced(labels: Labels, rate: Decimal) -> bool:
    return bool(labels["reduced_rate_mark"]) and rate in REDUCED_RATES


def _describe(line: Line, labels: Labels, formats: Formats) -> str:
    mark = f" {labels['reduced_rate_mark']}" if reduced(labels, line.tax_rate) else ""
    period = labels.fill(
        "service_period",
        start=formats.date(line.service_start),
        end=formats.date(line.service_end),
    )
    detail = f"\n{line.detail}" if line.detail else ""
    return f"{line.product}{mark}{detail}\n{period}"


def lines_table(
    pdf: Page,
    content: DocumentContent,
    labels: Labels,
    formats: Formats,
    accent: tuple[int, int, int],
) -> None:
    discounted = any(line.discount for line in content.lines)
    columns = [(labels["quantity"], 14.0), (labels["unit_price"], 26.0)]
    if discounted:
        columns.append((labels["discount"], 24.0))
    columns += [(labels["tax_rate"], 14.0), (labels["amount"], 28.0)]
    widths = [BODY - sum(width for _, width in columns), *(width for _, width in columns)]
    align = ["LEFT"] + ["RIGHT"] * len(columns)
    pdf.style(8.5)
    with pdf.table(
        col_widths=widths,
        width=BODY,
        text_align=align,
        line_height=4.6,
        padding=(1.1, 1.2),
        borders_layout="HORIZONTAL_LINES",
        first_row_as_headings=True,
        headings_style=_heading_style(accent),
        v_align="TOP",
    ) as table:
        row = table.row()
        for text in [labels["description"], *(label for label, _ in columns)]:
            row.cell(text)
        for line in content.lines:
            row = table.row()
            row.cell(_describe(line, labels, formats))
            row.cell(formats.number(line.quantity))
            row.cell("" if line.unit_price is None else formats.money(line.unit_price))
            if discounted:
                row.cell(f"{formats.percent(line.discount_percent)}%" if line.discount else "")
            row.cell(f"{formats.percent(line.tax_rate)}%")
            row.cell(formats.money(line.amount))
    pdf.ln(3)


def _heading_style(accent: tuple[int, int, int]) -> FontFace:
    return FontFace(color=accent, fill_color=(241, 244, 248), size_pt=8.5)


def _tax_line(content: DocumentContent, tax: TaxRate, labels: Labels, formats: Formats) -> str:
    if tax.reverse_charge:
        return labels.fill("reverse_charge_line", taxable=formats.money(tax.taxable))
    name = labels["vat_name" if content.buyer.country in VAT_COUNTRIES else "tax_name"]
    mark = f"{labels['reduced_rate_mark']} " if reduced(labels, tax.rate) else ""
    return mark + labels.fill(
        "tax_line", tax=name, rate=formats.percent(tax.rate), taxable=formats.money(tax.taxable)
    )


def totals(pdf: Page, content: DocumentContent, labels: Labels, formats: Formats) -> None:
    rows: list[tuple[str, str, bool]] = []
    gross = sum((line.gross for line in content.lines), Decimal(0))
    discounts = sum((line.discount for line in content.lines), Decimal(0))
    if discounts:
        rows.append((labels["total_before_discounts"], formats.money(gross), False))
        rows.append((labels["discounts"], formats.money(-discounts), False))
    rows.append((labels["subtotal"], formats.money(content.subtotal), False))
    rows += [
        (_tax_line(content, tax, labels, formats), formats.money(tax.tax), False)
        for tax in content.taxes
    ]
    rows.append((labels["total"], formats.money(content.total), True))
    if content.kind == "invoice":
        rows.append((labels["amount_paid"], formats.money(content.amount_paid), False))
        if content.amount_credited:
            rows.append((labels["amount_credited"], formats.money(content.amount_credited), False))
        rows.append((labels["balance_due"], formats.money(content.balance_due), True))
    label_width, amount_width = BODY * 0.42, BODY * 0.16
    if pdf.get_y() + 6 * len(rows) > pdf.page_break_trigger:
        pdf.add_page()
    for label, amount, strong in rows:
        pdf.set_x(WIDTH - MARGIN - label_width - amount_width)
        if strong:
            pdf.set_draw_color(*RULE)
            pdf.line(pdf.get_x(), pdf.get_y(), WIDTH - MARGIN, pdf.get_y())
        pdf.style(9.5 if strong else 9, bold=strong)
        pdf.cell(label_width, 5.6, label, align="R")
        pdf.cell(amount_width, 5.6, amount, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
