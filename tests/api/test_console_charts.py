"""The console's SVG charts: round scales, bars where the values put them, movements stacked
on both sides of zero, text escaped, and a title and description for screen readers."""

from __future__ import annotations

import re
from decimal import Decimal
from xml.etree import ElementTree

import pytest

from connector.api.console.charts import (
    BOTTOM,
    HEIGHT,
    TOP,
    Series,
    bar_chart,
    movement_chart,
    nice_step,
    scale,
    tick_label,
)

SVG = "{http://www.w3.org/2000/svg}"
D = Decimal


@pytest.mark.parametrize(
    ("span", "step"),
    [(D(350), D(100)), (D(1000), D("250")), (D("0.9"), D("0.25")), (D(17), D(5)), (D(0), D(1))],
)
def test_nice_steps(span: Decimal, step: Decimal) -> None:
    assert nice_step(span) == step


def test_scales_reach_round_values_around_zero() -> None:
    assert scale(D(0), D("350.00")) == [D(0), D(100), D(200), D(300), D(400)]
    assert scale(D(-150), D(250)) == [D(-200), D(-100), D(0), D(100), D(200), D(300)]
    assert scale(D(0), D(0)) == [D(0), D("0.25"), D("0.50"), D("0.75"), D("1.00")]


def test_tick_labels() -> None:
    assert [tick_label(v) for v in (D(0), D(250), D(2500), D(-1500000), D("0.5"))] == [
        "0", "250", "2.5k", "-1.5M", "0.5"
    ]  # fmt: skip


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_a_bar_chart() -> None:
    svg = bar_chart(
        "mrr-USD",
        "MRR in USD by month",
        "From January to March <2026> & more",
        labels=["Jan 26", "Feb 26", "Mar 26"],
        values=[D("100.00"), D(0), D("350.00")],
        tips=["January 2026: 100.00 USD", "February 2026: 0.00 USD", "March 2026: 350.00 USD"],
    )
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "mrr-USD-title mrr-USD-desc"
    assert root.find(f"{SVG}title").text == "MRR in USD by month"
    assert root.find(f"{SVG}desc").text == "From January to March <2026> & more"
    assert "&lt;2026&gt; &amp; more" in svg
    bars = root.findall(f"{SVG}rect")
    assert [bar.find(f"{SVG}title").text for bar in bars] == [
        "January 2026: 100.00 USD", "February 2026: 0.00 USD", "March 2026: 350.00 USD"
    ]  # fmt: skip
    zero = D(HEIGHT - BOTTOM)  # the scale runs 0 … 400
    plot = zero - TOP
    heights = [D(bar.get("height")) for bar in bars]
    assert heights == [(plot / 4).quantize(D("0.1")), D(0), (plot * 7 / 8).quantize(D("0.1"))]
    assert {D(bar.get("y")) + D(bar.get("height")) for bar in bars} == {zero}
    months = [t.text for t in root.findall(f"{SVG}text") if t.get("class") == "month"]
    ticks = [t.text for t in root.findall(f"{SVG}text") if t.get("class") == "tick"]
    assert months == ["Jan 26", "Feb 26", "Mar 26"]
    assert ticks == ["0", "100", "200", "300", "400"]


def test_movements_stack_on_both_sides_of_zero_with_their_net() -> None:
    svg = movement_chart(
        "moves",
        "Movements",
        "Up and down",
        labels=["Jan", "Feb"],
        series=[
            Series("new", "new", [D(100), D(0)]),
            Series("expansion", "expansion", [D(50), D(0)]),
            Series("churn", "churn", [D(0), D(150)], down=True),
        ],
        net=[D(150), D(-150)],
        tip=lambda name, label, amount: f"{name}, {label}: {amount}",
    )
    root = parse(svg)
    bars = {bar.find(f"{SVG}title").text: bar for bar in root.findall(f"{SVG}rect")}
    assert list(bars) == ["new, Jan: 100", "expansion, Jan: 50", "churn, Feb: 150"]
    new, expansion, churn = bars.values()
    assert D(new.get("y")) == D(expansion.get("y")) + D(expansion.get("height"))  # stacked
    zero = D(new.get("y")) + D(new.get("height"))
    assert D(churn.get("y")) == zero  # below zero
    assert D(churn.get("height")) == D(new.get("height")) + D(expansion.get("height"))
    points = root.find(f"{SVG}polyline").get("points")
    assert len(points.split()) == 2
    assert [c.find(f"{SVG}title").text for c in root.findall(f"{SVG}circle")] == [
        "net, Jan: 150", "net, Feb: -150"
    ]  # fmt: skip
    assert not re.search(r"style=", svg)  # the page's CSP allows no inline style
