"""The usage mapping (``mappings/usage.yaml``): billable metrics and their default terms (metered
prices per currency, a price list: subscription items carry the prices billed).

Loading validates the whole file and names the file, line and key of every problem.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import currency as currency_of
from connector.billing.pricing import Tier
from connector.billing.usage import Aggregation, Metric
from connector.errors import ConfigError, InvalidInputError
from connector.settings import Settings, mapping_path
from connector.sync.importer import TierRecord
from connector.yamlfile import Location, YamlDocument, format_location, load_yaml

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SECTIONS = ("metrics", "prices")
T = TypeVar("T")
_LOADED: dict[Path, tuple[tuple[int, int], UsageMapping]] = {}  # by file: (mtime, size)
_LOADING = threading.Lock()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)) or value is None:
        raise ValueError(f"{value!r} is not a text or a number")
    return str(value)


class MetricRecord(_Model):
    code: str
    name: str = ""
    aggregation: Aggregation
    field: str | None = Field(default=None, min_length=1, max_length=255)
    filters: dict[str, list[Any]] = Field(default_factory=dict)
    group_by: str | None = Field(default=None, min_length=1, max_length=255)
    recurring: bool = False

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError(f"{value!r} is not a code (letters, digits, _ . -; at most 64)")
        return value

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, allowed in value.items():
            if not allowed:
                raise ValueError(f"filter {key!r} lists no value")
            for item in allowed:
                _scalar_text(item)
        return value

    def to_metric(self) -> Metric:
        filters = tuple(
            (key, frozenset(_scalar_text(item) for item in allowed))
            for key, allowed in sorted(self.filters.items())
        )
        return Metric(
            self.code,
            self.aggregation,
            self.field,
            filters,
            self.group_by,
            self.recurring,
            self.name,
        )


class PriceRecord(_Model):
    metric: str
    currency: str
    model: MeteredModel
    unit_amount: Decimal | None = None
    tiers: list[TierRecord] = Field(default_factory=list)
    package_size: int | None = None
    package_amount: Decimal | None = None
    free_units: Decimal = Decimal(0)
    minimum: Decimal | None = None

    def to_price(self) -> MeteredPrice:
        return MeteredPrice(
            self.metric,
            currency_of(self.currency),
            self.model,
            self.unit_amount,
            tuple(
                Tier(tier.first_unit, tier.last_unit, tier.unit_amount, tier.flat_amount)
                for tier in self.tiers
            ),
            self.package_size,
            self.package_amount,
            self.free_units,
            self.minimum,
        )


@dataclass(frozen=True)
class UsageMapping:
    metrics: dict[str, Metric]
    prices: dict[tuple[str, str], MeteredPrice]  # by (metric, currency)

    def price_of(self, metric: str, currency: str) -> MeteredPrice | None:
        return self.prices.get((metric, currency))


class _Loader:
    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.problems: list[tuple[int, str]] = []

    def problem(self, location: Location, message: str) -> None:
        self.problems.append((self.document.line_of(location) or 0, message))

    def each(
        self, section: str, model: type[BaseModel], build: Callable[[Any], T]
    ) -> list[tuple[Location, T]]:
        built: list[tuple[Location, T]] = []
        try:
            records = list(self.document.records(section))
        except InvalidInputError as error:
            self.problem((section,), str(error))
            return built
        for location, entry in records:
            try:
                built.append((location, build(model.model_validate(entry))))
            except ValidationError as error:
                self.problem(location, self.document.describe(error, location))
            except InvalidInputError as error:
                self._again(location, str(error))
        return built

    def load(self) -> UsageMapping:
        for key in sorted(set(self.document.data or {}) - set(SECTIONS)):
            where = self.document.where((key,))
            self.problem((key,), f"{where}: {key}: unknown section (expected metrics, prices)")
        metrics: dict[str, Metric] = {}
        for location, metric in self.each("metrics", MetricRecord, MetricRecord.to_metric):
            if metric.code in metrics:
                self._again((*location, "code"), f"metric {metric.code!r} is defined twice")
            metrics[metric.code] = metric
        prices: dict[tuple[str, str], MeteredPrice] = {}
        for location, price in self.each("prices", PriceRecord, PriceRecord.to_price):
            key = (price.metric, price.currency.code)
            if price.metric not in metrics:
                self._again((*location, "metric"), f"unknown metric {price.metric!r}")
            elif key in prices:
                self._again(location, f"a second price of {key[0]} in {key[1]}")
            prices[key] = price
        if self.problems:
            messages = [message for _, message in sorted(self.problems, key=lambda p: p[0])]
            raise ConfigError("\n".join(messages))
        return UsageMapping(metrics, prices)

    def _again(self, location: Location, message: str) -> None:
        where = self.document.where(location)
        self.problem(location, f"{where}: {format_location(location)}: {message}")


def load_usage_mapping(path: Path) -> UsageMapping:
    """The usage mapping in ``path``; a missing, unreadable or invalid file is a configuration
    error naming the file and the line of each problem."""
    try:
        document = load_yaml(path)
    except InvalidInputError as error:
        raise ConfigError(str(error)) from None
    return _Loader(document).load()


def usage_mapping_of(settings: Settings) -> UsageMapping:
    """The usage mapping ``usage.mapping_file`` names, read again only when the file changed
    (its modification time or size): the HTTP API asks for it with every batch of events."""
    path = mapping_path(settings.usage.mapping_file)
    try:
        found = path.stat()
    except OSError:
        return load_usage_mapping(path)  # a configuration error naming the file
    stamp = (found.st_mtime_ns, found.st_size)
    with _LOADING:
        loaded = _LOADED.get(path)
        if loaded is None or loaded[0] != stamp:
            loaded = _LOADED[path] = (stamp, load_usage_mapping(path))
        return loaded[1]
