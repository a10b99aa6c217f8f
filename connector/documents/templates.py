"""The words of a document in each language: ``templates/<language>.yaml`` shipped with the
connector, each key overridable from ``<documents.templates>/<language>.yaml`` (a file there
for a new language adds it). Keys a language leaves out come from English. The layout itself
is code (:mod:`connector.documents.layout`); the words, the locale that writes amounts and dates,
the date pattern and the accent colour are the template's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from connector.errors import ConfigError

BASE = "en"
LANGUAGE = re.compile(r"^[a-z]{2}$")


@dataclass(frozen=True)
class Labels:
    language: str
    words: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.words[key]

    def fill(self, key: str, **values: str) -> str:
        return self.words[key].format(**values)


def _read(path: Path) -> dict[str, str]:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read the document template {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"document template {path}: expected key: text lines")
    return {str(key): "" if value is None else str(value) for key, value in data.items()}


@cache
def _shipped(language: str) -> dict[str, str]:
    path = Path(str(resources.files("connector.documents").joinpath("templates")))
    file = path / f"{language}.yaml"
    return _read(file) if file.is_file() else {}


def languages(folder: str) -> set[str]:
    """The languages documents can be written in: shipped, or added in ``folder``."""
    shipped = Path(str(resources.files("connector.documents").joinpath("templates")))
    found = {path.stem for path in shipped.glob("*.yaml")}
    if folder:
        found |= {path.stem for path in Path(folder).expanduser().glob("*.yaml")}
    return {language for language in found if LANGUAGE.match(language)}


def labels(language: str, folder: str = "") -> Labels:
    """The words of ``language``: English, then the shipped file of the language, then the
    user's; a key the user's file adds that English lacks is a configuration error."""
    words = dict(_shipped(BASE))
    words.update(_shipped(language))
    if folder:
        file = Path(folder).expanduser() / f"{language}.yaml"
        if file.is_file():
            custom = _read(file)
            unknown = sorted(set(custom) - set(words))
            if unknown:
                raise ConfigError(
                    f"document template {file}: unknown keys {', '.join(unknown)} "
                    f"(the keys are those of the shipped {BASE}.yaml)"
                )
            words.update(custom)
    return Labels(language, words)


def choose_language(language: str | None, country: str, default: str, available: set[str]) -> str:
    """The customer's language when documents can be written in it, else Japanese for a
    customer in Japan, else ``default``."""
    if language and language in available:
        return language
    if country == "JP" and "ja" in available:
        return "ja"
    return default if default in available else BASE
