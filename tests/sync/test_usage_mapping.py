"""mappings/usage.yaml: the shipped file, and errors named by file and line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connector.billing.metered import MeteredModel
from connector.billing.usage import Aggregation
from connector.errors import ConfigError
from connector.settings import load_settings, mapping_path
from connector.sync.usage_mapping import load_usage_mapping, usage_mapping_of

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "usage.yaml"


def test_the_shipped_mapping_defines_a_metric_of_each_kind_with_its_price() -> None:
    mapping = load_usage_mapping(SHIPPED)

    assert {code: m.aggregation for code, m in mapping.metrics.items()} == {
        "api_calls": Aggregation.COUNT,
        "storage_gb": Aggregation.WEIGHTED_SUM,
        "seats": Aggregation.UNIQUE_COUNT,
        "bandwidth_gb": Aggregation.SUM,
    }
    bandwidth = mapping.metrics["bandwidth_gb"]
    assert (bandwidth.field, bandwidth.group_by) == ("gb", "region")
    assert bandwidth.filters == (("direction", frozenset({"egress"})),)
    assert mapping.metrics["storage_gb"].recurring
    calls = mapping.price_of("api_calls", "USD")
    assert calls is not None
    assert (calls.model, calls.package_size, calls.package_amount, calls.free_units) == (
        MeteredModel.PACKAGE,
        1000,
        Decimal("0.50"),
        Decimal(10000),
    )
    assert mapping.price_of("api_calls", "EUR") is None
    assert mapping_path("mappings/usage.yaml").is_file()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "usage.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_usage_mapping(path)
    return str(error.value).splitlines()


def test_every_problem_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """metrics:
  - code: calls
    aggregation: count
  - code: gb
    aggregation: average
    field: gb
  - code: calls
    aggregation: sum
    field: n
  - code: users
    aggregation: count
    field: user
prices:
  - metric: calls
    currency: USD
    model: package
    package_amount: 1
  - metric: nothing
    currency: USD
    model: per_unit
    unit_amount: 1
  - metric: calls
    currency: XYZ
    model: per_unit
    unit_amount: 1
  - metric: calls
    currency: USD
    model: tiered
    tiers:
      - {first_unit: 1, last_unit: 10, unit_amount: 1}
plans: []
""",
    )

    assert problems(path) == [
        f"{path}:5: metrics[1].aggregation: Input should be 'count', 'sum', 'max', "
        "'unique_count', 'latest' or 'weighted_sum'",
        f"{path}:7: metrics[2].code: metric 'calls' is defined twice",
        f"{path}:10: metrics[3]: metric users: a count aggregates no field",
        f"{path}:14: prices[0]: metered price of calls in USD: a package price needs package_size",
        f"{path}:18: prices[1].metric: unknown metric 'nothing'",
        f"{path}:22: prices[2]: unknown currency 'XYZ' (not in ISO 4217)",
        f"{path}:26: prices[3]: metered price of calls in USD: the last tier ends at 10: it must be "
        "open-ended so that every quantity has a price",
        f"{path}:31: plans: unknown section (expected metrics, prices)",
    ]


def test_a_second_price_of_a_metric_in_a_currency_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """metrics:
  - {code: calls, aggregation: count}
prices:
  - {metric: calls, currency: USD, model: per_unit, unit_amount: 1}
  - {metric: calls, currency: usd, model: per_unit, unit_amount: 2}
""",
    )

    assert problems(path) == [f"{path}:5: prices[1]: a second price of calls in USD"]


def test_a_file_that_is_not_yaml_or_missing_is_a_configuration_error(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "metrics: [\n")) == [
        f"{tmp_path / 'usage.yaml'}:2: not valid YAML: expected the node content, but found "
        "'<stream end>'"
    ]
    assert problems(tmp_path / "none.yaml") == [
        f"cannot read {tmp_path / 'none.yaml'}: No such file or directory"
    ]


def test_the_mapping_the_settings_name_is_read_again_only_once_changed(tmp_path: Path) -> None:
    path = tmp_path / "usage.yaml"
    path.write_text("metrics:\n  - {code: calls, aggregation: count}\n")
    settings = load_settings(None, usage={"mapping_file": str(path)})

    first = usage_mapping_of(settings)
    assert usage_mapping_of(settings) is first
    path.write_text(
        "metrics:\n  - {code: calls, aggregation: count}\n  - {code: gb, aggregation: max, field: gb}\n"
    )

    assert sorted(usage_mapping_of(settings).metrics) == ["calls", "gb"]
    path.write_text("metrics: [\n")
    with pytest.raises(ConfigError):
        usage_mapping_of(settings)
