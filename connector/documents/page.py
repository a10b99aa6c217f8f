"""The page documents are laid out on: A4 with fpdf2, its margins and colours, a footer with the
seller and the page number, and a bold that also works with the one weight of the Japanese
font (drawn with an outline)."""

from __future__ import annotations

import copy
import hashlib
import logging
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import TextMode
from fpdf.fonts import SubsetMap, TTFFont

WIDTH, MARGIN = 210.0, 18.0
BODY = WIDTH - 2 * MARGIN
GREY = (110, 110, 110)
INK = (25, 25, 25)
RULE = (205, 205, 205)

# fontTools reports every table it subsets at INFO: not news for whoever reads our logs.
for _noisy in ("fontTools", "fpdf"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


@cache
def _parsed(path: Path, fontkey: str, style: str) -> TTFFont:
    """fpdf2's reading of a font file (its character widths and glyph ids), once a process."""
    return TTFFont(FPDF(), path, fontkey, style)


def hex_color(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


class Page(FPDF):
    """An A4 page whose file identifier comes from ``identity`` (a document's number and
    version), with the seller and the page number in its footer."""

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

    def add_kept_font(self, family: str, style: str, path: Path) -> None:
        """``add_font``, reading the file once a process: each document gets a copy of the
        parsed font with a font file of its own, which the PDF's subset is cut from (the same
        bytes as ``add_font`` gives)."""
        fontkey = f"{family.lower()}{style}"
        font = copy.deepcopy(_parsed(path, fontkey, style))
        font.i = len(self.fonts) + 1
        font.ttfont = TTFont(path, recalcTimestamp=False, lazy=True)
        font.subset = SubsetMap(font)
        self.fonts[fontkey] = font
