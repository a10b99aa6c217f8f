"""The layout of an invoice or credit note on A4, with fpdf2: the seller and the buyer, the
document's number and dates, its lines, the totals with the tax of each rate, the notes the law
asks for, and how to pay. The words come from the document's template
(:mod:`connector.documents.templates`); the figures are the billing core's, as stored.

The same content gives the same bytes: the PDF's dates are the document's issue date and its
file identifier is derived from its number and version, never from the clock.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TextMode, XPos, YPos
from fpdf.fonts import FontFace

from connector.billing.vat import EU_MEMBER_STATES
from connector.documents import fonts
from connector.documents.content import DocumentContent, Line, TaxRate
from connector.documents.formatting import Formats
from connector.documents.templates import Labels

WIDTH, MARGIN = 210.0, 18.0
BODY = WIDTH - 2 * MARGIN
GREY = (110, 110, 110)
INK = (25, 25, 25)
RULE = (205, 205, 205)
REDUCED_RATES = frozenset({Decimal(8)})  # Japan's reduced consumption tax rate
VAT_COUNTRIES = EU_MEMBER_STATES | {"GB", "NO", "CH"}

# fontTools reports every table it subsets at INFO: not news for whoever reads our logs.
for _noisy in ("fontTools", "fpdf"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Seller:
    name: str
    address: tuple[str, ...]
    tax_id: str
    registration_number: str
    bank_details: tuple[str, ...]
    logo: str


def _hex(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


class _Pdf(FPDF):
    def __init__(self, identity: str, footer: str, page_label: str) -> None:
        super().__init__(format="A4", unit="mm")
        self._identity = hashlib.sha256(identity.encode()).hexdigest()[:32].upper()
        self._footer = footer
        self._page_label = page_label
        self.fake_bold = False

    def file_id(self) -> str:
        return f"<{self._identity}><{self._identity}>"

    def footer(self) -> None:
        self.set_y(-14)
        self.style(7.5, color=GREY)
        self.cell(BODY / 2, 5, self._footer)
        label = self._page_label.format(page=self.page_no(), pages="{nb}")
        self.cell(BODY / 2, 5, label, align="R")

    def style(self, size: float, *, bold: bool = False, color: tuple[int, int, int] = INK) -> None:
        if self.fake_bold:  # one weight of the Japanese font: bold is drawn with an outline
            self.set_font(size=size)
            self.text_mode = TextMode.FILL_STROKE if bold else TextMode.FILL
            self.set_line_width(0.18 if bold else 0.2)
            self.set_draw_color(*color)
        else:
            self.set_font(style="B" if bold else "", size=size)
        self.set_text_color(*color)


def _setup(content: DocumentContent, labels: Labels, seller: Seller, font_cache: str) -> _Pdf:
    pdf = _Pdf(f"{content.number}:{content.version}", seller.name, labels["page"])
    issued = datetime.combine(content.issue_date, time(), tzinfo=UTC)
    pdf.set_creation_date(issued)
    pdf.set_title(f"{_title(content, labels)} {content.number}")
    pdf.set_author(seller.name)
    pdf.set_margins(MARGIN, 16, MARGIN)
    pdf.set_auto_page_break(True, margin=20)
    texts = [*content.texts(), seller.name, *seller.address, *seller.bank_details]
    if labels.language == "ja" or fonts.needs_japanese(texts + list(labels.words.values())):
        japanese = str(fonts.japanese_file(font_cache))
        pdf.add_font(fonts.JAPANESE, "", japanese)
    if labels.language == "ja":
        pdf.set_font(fonts.JAPANESE, size=9)
        pdf.fake_bold = True
    else:
        for style, path in fonts.latin_files(font_cache).items():
            pdf.add_font(fonts.LATIN, style, str(path))
        if fonts.JAPANESE in pdf.fonts:
            pdf.set_fallback_fonts([fonts.JAPANESE], exact_match=False)
        pdf.set_font(fonts.LATIN, size=9)
    pdf.add_page()
    return pdf


def _title(content: DocumentContent, labels: Labels) -> str:
    return labels["title_credit_note" if content.kind == "credit_note" else "title_invoice"]


def render(content: DocumentContent, labels: Labels, seller: Seller, font_cache: str = "") -> bytes:
    """The PDF of ``content`` in the words of ``labels``."""
    formats = Formats(labels["locale"], labels["date_format"], content.currency)
    pdf = _setup(content, labels, seller, font_cache)
    accent = _hex(labels["accent"])
    _header(pdf, content, labels, seller, formats)
    _parties(pdf, content, labels, seller, formats)
    _lines(pdf, content, labels, formats, accent)
    _totals(pdf, content, labels, formats)
    _notes(pdf, content, labels, seller, formats)
    return bytes(pdf.output())


def _header(
    pdf: _Pdf, content: DocumentContent, labels: Labels, seller: Seller, formats: Formats
) -> None:
    accent = _hex(labels["accent"])
    top = pdf.get_y()
    if seller.logo:
        pdf.image(str(Path(seller.logo).expanduser()), x=MARGIN, y=top, h=14)
    pdf.set_xy(WIDTH / 2, top)
    pdf.style(20, bold=True, color=accent)
    pdf.cell(BODY / 2, 9, _title(content, labels), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    qualified = labels[
        "qualified_credit_note" if content.kind == "credit_note" else "qualified_invoice"
    ]
    stamp = {"paid": labels["paid_stamp"], "void": labels["void_stamp"]}.get(content.status.lower())
    subtitle = "  ".join(part for part in (qualified, stamp and f"[{stamp}]") if part)
    if subtitle:
        pdf.style(10, bold=True, color=accent)
        pdf.cell(BODY / 2, 6, subtitle, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    facts = [
        (labels["number"], content.number),
        (labels["issue_date"], formats.date(content.issue_date)),
    ]
    if content.kind == "invoice":
        facts.append((labels["due_date"], formats.date(content.due_date)))
    if content.corrects:
        facts.append((labels["corrects_invoice"], content.corrects))
    for label, value in facts:
        pdf.set_x(WIDTH / 2)
        pdf.style(9, color=GREY)
        pdf.cell(BODY / 4, 5, label, align="R")
        pdf.style(9, bold=True)
        pdf.cell(BODY / 4, 5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + 18) + 4)


def _block(pdf: _Pdf, x: float, width: float, heading: str, lines: list[tuple[str, bool]]) -> float:
    pdf.set_x(x)
    pdf.style(8, color=GREY)
    pdf.cell(
        width,
        5,
        heading.upper() if heading.isascii() else heading,
        new_x=XPos.LEFT,
        new_y=YPos.NEXT,
    )
    for text, strong in lines:
        pdf.set_x(x)
        pdf.style(10 if strong else 9, bold=strong)
        pdf.multi_cell(width, 4.6, text, new_x=XPos.LEFT, new_y=YPos.NEXT)
    return pdf.get_y()


def _parties(
    pdf: _Pdf, content: DocumentContent, labels: Labels, seller: Seller, formats: Formats
) -> None:
    top = pdf.get_y()
    own: list[tuple[str, bool]] = [(seller.name, True)] + [(line, False) for line in seller.address]
    if seller.tax_id:
        own.append((f"{labels['tax_id']}: {seller.tax_id}", False))
    if seller.registration_number and labels.language == "ja":
        own.append((f"{labels['registration_number']}: {seller.registration_number}", False))
    buyer = content.buyer
    name = " ".join(part for part in (buyer.name, labels["buyer_honorific"]) if part)
    theirs: list[tuple[str, bool]] = [(name, True)] + [(line, False) for line in buyer.address]
    theirs.append((formats.country(buyer.country), False))
    if buyer.tax_id:
        theirs.append((f"{labels['tax_id']}: {buyer.tax_id}", False))
    half = BODY / 2 - 4
    end_left = _block(pdf, MARGIN, half, labels["buyer"], theirs)
    pdf.set_y(top)
    end_right = _block(pdf, WIDTH / 2 + 4, half, labels["seller"], own)
    pdf.set_y(max(end_left, end_right) + 5)
    if content.kind == "invoice" and content.status.lower() != "void":
        pdf.style(13, bold=True)
        headline = labels.fill(
            "amount_due_headline",
            amount=formats.money(content.balance_due),
            due_date=formats.date(content.due_date),
        )
        pdf.cell(BODY, 8, headline, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.style(8, color=GREY)
    pdf.cell(
        BODY,
        5,
        labels.fill("currency_note", currency=content.currency),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(1)


def _reduced(labels: Labels, rate: Decimal) -> bool:
    return bool(labels["reduced_rate_mark"]) and rate in REDUCED_RATES


def _describe(line: Line, labels: Labels, formats: Formats) -> str:
    mark = f" {labels['reduced_rate_mark']}" if _reduced(labels, line.tax_rate) else ""
    period = labels.fill(
        "service_period",
        start=formats.date(line.service_start),
        end=formats.date(line.service_end),
    )
    detail = f"\n{line.detail}" if line.detail else ""
    return f"{line.product}{mark}{detail}\n{period}"


def _lines(
    pdf: _Pdf,
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
    mark = f"{labels['reduced_rate_mark']} " if _reduced(labels, tax.rate) else ""
    return mark + labels.fill(
        "tax_line", tax=name, rate=formats.percent(tax.rate), taxable=formats.money(tax.taxable)
    )


def _totals(pdf: _Pdf, content: DocumentContent, labels: Labels, formats: Formats) -> None:
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


def _paragraph(
    pdf: _Pdf, text: str, *, size: float = 8.5, color: tuple[int, int, int] = INK
) -> None:
    pdf.style(size, color=color)
    pdf.multi_cell(BODY, 4.4, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _notes(
    pdf: _Pdf, content: DocumentContent, labels: Labels, seller: Seller, formats: Formats
) -> None:
    accent = _hex(labels["accent"])
    if any(tax.reverse_charge for tax in content.taxes):
        _paragraph(pdf, labels["reverse_charge_note"] or content.tax_note or "")
    if (
        any(_reduced(labels, line.tax_rate) for line in content.lines)
        and labels["reduced_rate_legend"]
    ):
        _paragraph(pdf, labels["reduced_rate_legend"])
    if content.kind == "credit_note" and content.corrects:
        _paragraph(pdf, labels.fill("credit_note_text", invoice=content.corrects))
        if content.reason:
            _paragraph(pdf, f"{labels['reason']}: {content.reason}", color=GREY)
    if content.kind != "invoice" or content.status.lower() in {"paid", "void"}:
        return
    pdf.ln(3)
    pdf.style(10, bold=True, color=accent)
    pdf.cell(BODY, 6, labels["payment_instructions"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pay_by = labels.fill(
        "pay_by",
        amount=formats.money(content.balance_due),
        due_date=formats.date(content.due_date),
        number=content.number,
    )
    _paragraph(pdf, "\n".join([pay_by, *seller.bank_details]), size=9)
