"""The fonts documents are set in, all installed with pip: Source Sans Pro for Latin text
(``font-source-sans-pro``) and Noto Sans JP for Japanese (``justmytype-intl-cjk``).

Noto Sans JP ships as one variable font of 9.6 MB with 16,000 characters. Making a regular
instance of it takes fontTools some seconds, so it is made once, cut down to the characters
Japanese text uses (JIS X 0213: kana, the kanji of names and addresses, full-width forms, and
every Latin character), and kept in a cache folder (``documents.font_cache``; a new fontTools or
font makes a new file). fpdf2 then embeds in each PDF only the glyphs the document uses, so a
Japanese invoice weighs tens of kilobytes, not megabytes.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path

import fontTools
from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.varLib import instancer

from connector.errors import ConfigError
from connector.private_files import make_directories, write_private

LATIN = "sourcesans"
JAPANESE = "notosansjp"
JAPANESE_WEIGHT = 400
CACHE_ENV = "XDG_CACHE_HOME"
# fpdf2 places glyphs one after another (no text shaping), so the OpenType layout tables only
# cost time when each PDF's subset is made: the fonts kept in the cache go without them.
UNUSED_TABLES = ("GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "STAT")


def latin_sources() -> dict[str, Path]:
    """Source Sans Pro as installed: the style ("" regular, "B" bold) -> its TTF file."""
    folder = Path(str(resources.files("font_source_sans_pro").joinpath("files")))
    return {"": folder / "SourceSansPro-Regular.ttf", "B": folder / "SourceSansPro-Semibold.ttf"}


def latin_files(configured_cache: str = "") -> dict[str, Path]:
    """Source Sans Pro without its layout tables, made and kept on first use."""
    return {
        style: _cached(source, "", configured_cache, _without_layout)
        for style, source in latin_sources().items()
    }


def _without_layout(source: Path) -> bytes:
    font = TTFont(source, recalcTimestamp=False)
    for table in UNUSED_TABLES:
        if table in font:
            del font[table]
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def _cached(
    source: Path, variant: str, configured_cache: str, make: Callable[[Path], bytes]
) -> Path:
    """The font ``make`` makes of ``source``, kept in the cache folder under a name that changes
    with the source file, fontTools and ``variant``."""
    stat = source.stat()
    key = hashlib.sha256(
        f"{source.name}:{stat.st_size}:{fontTools.version}:{variant}:{UNUSED_TABLES}".encode()
    ).hexdigest()[:16]
    path = cache_folder(configured_cache) / f"{source.stem}{variant}-{key}.ttf"
    if not path.is_file():
        make_directories(path.parent)
        write_private(path, make(source))
    return path


def japanese_source() -> Path:
    """The variable Noto Sans JP font of the ``justmytype-intl-cjk`` package."""
    root = Path(str(resources.files("justmytype_intl_cjk").joinpath("fonts")))
    found = sorted(root.glob("**/NotoSansJP*.ttf"))
    if not found:
        raise ConfigError(f"Noto Sans JP is missing from {root}: reinstall justmytype-intl-cjk")
    return found[0]


@cache
def latin_characters() -> frozenset[int]:
    """The characters Source Sans Pro draws (text with others needs the Japanese font)."""
    font = TTFont(latin_sources()[""], lazy=True)
    return frozenset(font.getBestCmap())


def needs_japanese(texts: list[str]) -> bool:
    covered = latin_characters()
    return any(ord(ch) not in covered for text in texts for ch in text if not ch.isspace())


def cache_folder(configured: str) -> Path:
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache")
    return Path(base) / "crm-billing-connector" / "fonts"


def japanese_file(configured_cache: str = "") -> Path:
    """The regular Noto Sans JP made from the installed variable font, made and kept on first
    use."""
    return _cached(japanese_source(), f"-{JAPANESE_WEIGHT}", configured_cache, build_japanese)


def _japanese_text(code: int) -> bool:
    if code < 0x3000:  # Latin, Greek, Cyrillic, punctuation, symbols
        return True
    if 0xFF00 <= code <= 0xFFEF:  # full-width and half-width forms
        return True
    try:
        chr(code).encode("shift_jis_2004")
    except UnicodeEncodeError:
        return False
    return True


def build_japanese(source: Path) -> bytes:
    """A static regular instance of the variable font, cut to the characters of Japanese
    text, without layout tables (the same bytes for the same font and fontTools)."""
    font = TTFont(source, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []
    options.drop_tables += list(UNUSED_TABLES)
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[code for code in font.getBestCmap() if _japanese_text(code)])
    subsetter.subset(font)
    static = instancer.instantiateVariableFont(font, {"wght": JAPANESE_WEIGHT}, static=True)
    buffer = io.BytesIO()
    static.save(buffer)
    return buffer.getvalue()
