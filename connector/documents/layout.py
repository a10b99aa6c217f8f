"""The layout of an invoice or credit note on A4, with fpdf2: the seller and the buyer, the
document's number and dates, its lines, the totals with the tax of each rate, the notes the law
asks for, and how to pay. The words come from the document's template
(:mod:`connector.documents.templates`); the figures are the billing core's, as stored.

The same content gives the same bytes: the PDF's dates are the document's issue date and its
file identifier is derived from its number and version, never from the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from fpdf.enums import XPos, YPos

from connector.documents import figures, fonts
from connector.documents.content import DocumentContent
from connector.documents.formatting import Formats
from connector.documents.page import BODY, GREY, INK, MARGIN, WIDTH, Page, hex_color
from connector.documents.templates import Labels


@dataclass(frozen=True)
class Seller:
    name: str
    address: tuple[str, ...]
    tax_id: str
    registration_number: str
    bank_details: tuple[str, ...]
    logo: str


def _setup(content: DocumentContent, labels: Labels, seller: Seller, font_cache: str) -> Page:
    pdf = Page(f"{content.number}:{content.version}", seller.name, labels["page"])
    issued = datetime.combine(content.issue_date, time(), tzinfo=UTC)
    pdf.set_creation_date(issued)
    pdf.set_title(f"{_title(content, labels)} {content.number}")
    pdf.set_author(seller.name)
    pdf.set_margins(MARGIN, 16, MARGIN)
    pdf.set_auto_page_break(True, margin=20)
    texts = [*content.texts(), seller.name, *seller.address, *seller.bank_details]
    if labels.language == "ja" or fonts.needs_japanese(texts + list(labels.words.values())):
        japanese = fonts.japanese_file(font_cache)
        pdf.add_kept_font(fonts.JAPANESE, "", japanese)
    if labels.language == "ja":
        pdf.set_font(fonts.JAPANESE, size=9)
        pdf.fake_bold = True
    else:
        for style, path in fonts.latin_files(font_cache).items():
            pdf.add_kept_font(fonts.LATIN, style, path)
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
    accent = hex_color(labels["accent"])
    _header(pdf, content, labels, seller, formats)
    _parties(pdf, content, labels, seller, formats)
    figures.lines_table(pdf, content, labels, formats, accent)
    figures.totals(pdf, content, labels, formats)
    _notes(pdf, content, labels, seller, formats)
    return bytes(pdf.output())


def _header(
    pdf: Page, content: DocumentContent, labels: Labels, seller: Seller, formats: Formats
) -> None:
    accent = hex_color(labels["accent"])
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


def _block(pdf: Page, x: float, width: float, heading: str, lines: list[tuple[str, bool]]) -> float:
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
    pdf: Page, content: DocumentContent, labels: Labels, seller: Seller, formats: Formats
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


def _paragraph(
    pdf: Page, text: str, *, size: float = 8.5, color: tuple[int, int, int] = INK
) -> None:
    pdf.style(size, color=color)
    pdf.multi_cell(BODY, 4.4, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _notes(
    pdf: Page, content: DocumentContent, labels: Labels, seller: Seller, formats: Formats
) -> None:
    accent = hex_color(labels["accent"])
    if any(tax.reverse_charge for tax in content.taxes):
        _paragraph(pdf, labels["reverse_charge_note"] or content.tax_note or "")
    if (
        any(figures.reduced(labels, line.tax_rate) for line in content.lines)
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
