"""YAML files users edit (mappings, imports), read so that every error can name its line.

Numbers with a fraction are read as exact decimals, never floats. ``validate`` turns pydantic
errors into messages of the form ``file.yaml:12: contracts[0].items[1].quantity: ...``.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from connector.errors import InvalidInputError

Model = TypeVar("Model")
Location = tuple[str | int, ...]


class _DecimalLoader(yaml.SafeLoader):
    """Safe YAML with decimals for numbers that have a fraction."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        value = Decimal(text)
    except decimal.InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise yaml.constructor.ConstructorError(
            None, None, f"{text} is not a finite number", node.start_mark
        )
    return value


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def _lines(node: yaml.Node, path: Location, into: dict[Location, int]) -> None:
    into.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                into[(*path, key.value)] = key.start_mark.line + 1
                _lines(value, (*path, key.value), into)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), into)


@dataclass
class YamlDocument:
    path: Path
    data: Any
    lines: dict[Location, int] = field(default_factory=dict)

    def line_of(self, location: Location) -> int | None:
        """Line of the deepest node along ``location`` that exists in the file."""
        for end in range(len(location), -1, -1):
            line = self.lines.get(tuple(location[:end]))
            if line is not None:
                return line
        return None

    def where(self, location: Location) -> str:
        line = self.line_of(location)
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def validate(self, model: type[Model], data: Any = None, at: Location = ()) -> Model:
        """Validate ``data`` (default: the whole file) found at ``at`` as ``model``."""
        subject = self.data if data is None else data
        try:
            return TypeAdapter(model).validate_python(subject)
        except ValidationError as error:
            raise InvalidInputError(self.describe(error, at)) from None

    def describe(self, error: ValidationError, at: Location = ()) -> str:
        messages = []
        for item in error.errors():
            location = (*at, *item["loc"])
            field_name = format_location(location)
            message = item["msg"].removeprefix("Value error, ")
            messages.append(f"{self.where(location)}: {field_name}: {message}")
        return "\n".join(messages)

    def records(self, key: str) -> Iterator[tuple[Location, Any]]:
        """Entries of the top-level list ``key`` with their locations."""
        entries = (self.data or {}).get(key) or []
        if not isinstance(entries, list):
            raise InvalidInputError(f"{self.where((key,))}: {key}: must be a list of records")
        for index, entry in enumerate(entries):
            yield (key, index), entry


def format_location(location: Location) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(file)"


def load_yaml(path: Path) -> YamlDocument:
    """Read a YAML file, with a clear error naming the file and line when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = yaml.load(text, Loader=_DecimalLoader)  # noqa: S506 - a SafeLoader subclass
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise InvalidInputError(f"{where}: not valid YAML: {problem}") from None
    document = YamlDocument(path, data)
    if root is not None:
        _lines(root, (), document.lines)
    if data is not None and not isinstance(data, dict):
        raise InvalidInputError(f"{path}:1: the file must hold a mapping of sections")
    return document
