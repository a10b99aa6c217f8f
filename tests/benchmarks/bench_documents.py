"""Benchmark: rendering invoices as PDF, and the PDFs' sizes.

    python tests/benchmarks/bench_documents.py --repeat 20

Four invoices are rendered: English (Source Sans Pro) and Japanese (Noto Sans JP, a qualified
invoice), each with 3 and with 50 lines. For each, in this process:

- ``first``: the first render (the fonts read and parsed, the templates loaded);
- ``cached``: the median of ``--repeat`` renders after it;
- ``baseline``: the median of as many PDFs that fpdf2 writes with the same fonts and the same
  text, one line after another, without layout: the cheapest way to get that text in a PDF;
- ``ratio``: cached / baseline;
- the size of the PDF (fonts embedded, cut to the glyphs used).

Then, in a fresh cache folder, the time to make the Japanese font from the installed variable
font (once per machine and version of the font or fontTools) before a first Japanese invoice.
Each PDF's text is read back with pypdf; the benchmark exits 1 when a document's number or
total is missing from it.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from fpdf import FPDF
from pypdf import PdfReader

from connector.documents import fonts, layout, templates
from connector.documents.content import DocumentContent, Line, Party, TaxRate
from connector.documents.formatting import Formats

D = Decimal
START = date(2026, 1, 1)
SELLER = layout.Seller(
    name="Northwind Billing Co.",
    address=("1 Market Street", "San Francisco, CA 94105", "United States"),
    tax_id="US-EIN 12-3456789",
    registration_number="T5835678256246",
    bank_details=("Bank: First Republic", "Account 000123456789, ABA 321081669"),
    logo="",
)


def content(language: str, count: int) -> DocumentContent:
    """An invoice of ``count`` lines, taxed at one rate (two in Japan: 10 % and 8 %)."""
    japanese = language == "ja"
    lines = []
    for index in range(count):
        reduced = japanese and index % 3 == 2
        price = D(1980 + 10 * index) if japanese else D("12.50") + index
        quantity = D(index % 7 + 1)
        lines.append(
            Line(
                product=(
                    f"クラウド利用料 {index + 1}" if japanese else f"Platform seat {index + 1}"
                ),
                detail=None,
                service_start=START,
                service_end=START + timedelta(days=30),
                quantity=quantity,
                discount_percent=D(0),
                amount=price * quantity,
                tax_rate=D(8) if reduced else D(10) if japanese else D(20),
                gross=price * quantity,
                unit_price=price,
            )
        )
    taxes = []
    for rate in sorted({line.tax_rate for line in lines}, reverse=True):
        taxable = sum((line.amount for line in lines if line.tax_rate == rate), D(0))
        tax = (taxable * rate / 100).quantize(D(1) if japanese else D("0.01"))
        taxes.append(TaxRate(rate, taxable, tax, "JP" if japanese else "GB", False))
    subtotal = sum((line.amount for line in lines), D(0))
    tax_total = sum((tax.tax for tax in taxes), D(0))
    buyer = (
        Party("株式会社さくらデータ", ("〒100-6690", "東京都千代田区丸の内1-9-2"), "JP", None)
        if japanese
        else Party(
            "Brightwater Analytics Ltd",
            ("14 Bishopsgate", "London", "EC2N 4BQ"),
            "GB",
            "GB980780684",
        )
    )
    return DocumentContent(
        id=1,
        version=1,
        kind="invoice",
        number=f"INV-{count:06d}",
        status="open",
        currency="JPY" if japanese else "GBP",
        issue_date=START,
        due_date=START + timedelta(days=30),
        buyer=buyer,
        lines=tuple(lines),
        taxes=tuple(taxes),
        subtotal=subtotal,
        tax_total=tax_total,
        total=subtotal + tax_total,
        amount_paid=D(0),
        amount_credited=D(0),
        tax_note=None,
        corrects=None,
        reason=None,
    )


def plain_text(document: DocumentContent, words: templates.Labels) -> list[str]:
    """The document's text, as lines, without layout."""
    formats = Formats(words["locale"], words["date_format"], document.currency)
    text = [words["title_invoice"], document.number, formats.date(document.issue_date)]
    text += [SELLER.name, *SELLER.address, document.buyer.name, *document.buyer.address]
    for line in document.lines:
        text.append(
            f"{line.product} {formats.number(line.quantity)} {formats.money(line.unit_price or D(0))}"
            f" {line.tax_rate}% {formats.money(line.amount)}"
        )
    text += [formats.money(document.subtotal), formats.money(document.total), *SELLER.bank_details]
    return text


def baseline(document: DocumentContent, words: templates.Labels, font_cache: str) -> bytes:
    pdf = FPDF()
    if words.language == "ja":
        pdf.add_font("body", "", str(fonts.japanese_file(font_cache)))
    else:
        pdf.add_font("body", "", str(fonts.latin_files(font_cache)[""]))
    pdf.set_font("body", size=9)
    pdf.add_page()
    for text in plain_text(document, words):
        pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def timed(work: Callable[[], bytes]) -> tuple[float, bytes]:
    began = time.perf_counter()
    data = work()
    return (time.perf_counter() - began) * 1000, data


def check(document: DocumentContent, data: bytes, words: templates.Labels) -> bool:
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    total = Formats(words["locale"], words["date_format"], document.currency).money(document.total)
    return document.number in text and total in text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="renders timed after the first")
    parser.add_argument("--font-cache", default="", help="the documents.font_cache folder")
    options = parser.parse_args()
    fonts.japanese_file(options.font_cache)  # made before: its making is timed apart below
    figures = []
    ok = True
    for language in ("en", "ja"):
        words = templates.labels(language)
        for count in (3, 50):
            document = content(language, count)

            def render(
                document: DocumentContent = document, words: templates.Labels = words
            ) -> bytes:
                return layout.render(document, words, SELLER, options.font_cache)

            def plain(
                document: DocumentContent = document, words: templates.Labels = words
            ) -> bytes:
                return baseline(document, words, options.font_cache)

            first, data = timed(render)
            ok = ok and check(document, data, words)
            cached = statistics.median(timed(render)[0] for _ in range(options.repeat))
            again = render()
            ok = ok and again == data  # the same content, the same bytes
            cheapest = statistics.median(timed(plain)[0] for _ in range(options.repeat))
            figures.append(
                {
                    "language": language,
                    "lines": count,
                    "first_ms": round(first, 1),
                    "cached_ms": round(cached, 1),
                    "baseline_ms": round(cheapest, 1),
                    "ratio": round(cached / cheapest, 2),
                    "pages": len(PdfReader(io.BytesIO(data)).pages),
                    "kb": round(len(data) / 1024, 1),
                    "baseline_kb": round(
                        len(baseline(document, words, options.font_cache)) / 1024, 1
                    ),
                }
            )
    print(
        f"{'doc':<8}{'first ms':>10}{'cached ms':>11}{'baseline ms':>13}{'ratio':>7}{'pages':>7}{'KB':>8}"
    )
    for row in figures:
        print(
            f"{row['language']}/{row['lines']:<5}{row['first_ms']:>10}{row['cached_ms']:>11}"
            f"{row['baseline_ms']:>13}{row['ratio']:>7}{row['pages']:>7}{row['kb']:>8}"
        )
    with tempfile.TemporaryDirectory() as cold:
        began = time.perf_counter()
        path = fonts.japanese_file(cold)
        making = time.perf_counter() - began
        size = path.stat().st_size
    print(f"making the Japanese font once (fresh cache): {making:.1f} s, {size / 1e6:.1f} MB")
    print(json.dumps({"documents": figures, "japanese_font_seconds": round(making, 1), "ok": ok}))
    if not ok:
        print("a PDF lacks its number or total, or rendered different bytes", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
