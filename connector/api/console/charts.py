"""Charts drawn on the server as inline SVG: bars by month, and movements stacked above and
below zero with a line through their net. No JavaScript; each chart has a title and a
description for screen readers, each bar its own tooltip, and the page gives the figures as a
table too. Amounts stay Decimal; positions are computed to a tenth of a pixel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 14, 30
PIXEL = Decimal("0.1")
NICE_STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


@dataclass(frozen=True)
class Series:
    """One kind of bar: its name, its CSS class, and a value per month (not negative; a
    series drawn below zero says so with ``down``)."""

    name: str
    css: str
    values: Sequence[Decimal]
    down: bool = False


def _px(value: Decimal) -> str:
    return f"{value.quantize(PIXEL):f}"


def nice_step(span: Decimal, count: int = 4) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` ticks."""
    if span <= 0:
        return Decimal(1)
    rough = span / count
    power = Decimal(10) ** (rough.adjusted())
    return next(step * power for step in NICE_STEPS if step * power >= rough)


def scale(low: Decimal, high: Decimal) -> list[Decimal]:
    """Ticks from a round value at or below ``low`` (and zero) to one at or above ``high``."""
    low, high = min(low, Decimal(0)), max(high, Decimal(0))
    if low == high:
        high = Decimal(1)
    step = nice_step(high - low)
    first = (low / step).to_integral_value(ROUND_FLOOR) * step
    last = (high / step).to_integral_value(ROUND_CEILING) * step
    ticks, tick = [], first
    while tick <= last:
        ticks.append(tick)
        tick += step
    return ticks


def tick_label(value: Decimal) -> str:
    """A tick as short as its value allows: 1.5M, 250k, 40, 2.5."""
    size = abs(value)
    for limit, suffix in ((Decimal(1_000_000), "M"), (Decimal(1000), "k")):
        if size >= limit:
            return f"{(value / limit).normalize():f}{suffix}"
    return f"{value.normalize():f}"


class _Frame:
    """The plot area, its y scale, and where each month's slot lies."""

    def __init__(self, ticks: list[Decimal], months: int) -> None:
        self.low, self.high = ticks[0], ticks[-1]
        self.ticks = ticks
        self.plot_height = Decimal(HEIGHT - TOP - BOTTOM)
        self.slot = Decimal(WIDTH - LEFT - RIGHT) / max(months, 1)

    def y(self, value: Decimal) -> Decimal:
        return TOP + (self.high - value) / (self.high - self.low) * self.plot_height

    def x(self, index: int) -> Decimal:
        return LEFT + self.slot * index

    def grid(self, labels: Sequence[str]) -> list[str]:
        parts = []
        for tick in self.ticks:
            y = _px(self.y(tick))
            css = "axis zero" if tick == 0 else "grid"
            parts.append(
                f'<line class="{css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
            )
            parts.append(
                f'<text class="tick" x="{LEFT - 8}" y="{y}" dy="0.32em" text-anchor="end">'
                f"{escape(tick_label(tick))}</text>"
            )
        for index, label in enumerate(labels):
            x = _px(self.x(index) + self.slot / 2)
            parts.append(
                f'<text class="month" x="{x}" y="{HEIGHT - 10}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
        return parts


def _svg(chart_id: str, title: str, description: str, body: list[str]) -> Markup:
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text above is escaped


def _bar(css: str, x: Decimal, width: Decimal, span: tuple[Decimal, Decimal], tip: str) -> str:
    top, bottom = sorted(span)
    return (
        f'<rect class="{css}" x="{_px(x)}" y="{_px(top)}" width="{_px(width)}" '
        f'height="{_px(bottom - top)}"><title>{escape(tip)}</title></rect>'
    )


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    *,
    labels: Sequence[str],
    values: Sequence[Decimal],
    tips: Sequence[str],
    css: str = "bar",
) -> Markup:
    """One bar per month (``tips``: each bar's tooltip)."""
    frame = _Frame(
        scale(min(values, default=Decimal(0)), max(values, default=Decimal(0))), len(labels)
    )
    body = frame.grid(labels)
    width = frame.slot * Decimal("0.62")
    for index, (value, tip) in enumerate(zip(values, tips, strict=True)):
        x = frame.x(index) + (frame.slot - width) / 2
        body.append(_bar(css, x, width, (frame.y(value), frame.y(Decimal(0))), tip))
    return _svg(chart_id, title, description, body)


def movement_chart(
    chart_id: str,
    title: str,
    description: str,
    *,
    labels: Sequence[str],
    series: Sequence[Series],
    net: Sequence[Decimal],
    tip: Callable[[str, str, Decimal], str],
) -> Markup:
    """Per month, the ``series`` stacked above zero (or below, for those ``down``), and their
    ``net`` as a line with a point per month; ``tip(name, label, amount)`` is a tooltip."""
    ups = [sum((s.values[i] for s in series if not s.down), Decimal(0)) for i in range(len(labels))]
    downs = [sum((s.values[i] for s in series if s.down), Decimal(0)) for i in range(len(labels))]
    frame = _Frame(
        scale(-max(downs, default=Decimal(0)), max(ups, default=Decimal(0))), len(labels)
    )
    body = frame.grid(labels)
    width = frame.slot * Decimal("0.62")
    for index, label in enumerate(labels):
        x = frame.x(index) + (frame.slot - width) / 2
        above = below = Decimal(0)
        for part in series:
            value = part.values[index]
            if not value:
                continue
            start = below if part.down else above
            end = start - value if part.down else start + value
            text = tip(part.name, label, value)
            body.append(_bar(part.css, x, width, (frame.y(start), frame.y(end)), text))
            if part.down:
                below = end
            else:
                above = end
    points = [(frame.x(index) + frame.slot / 2, frame.y(value)) for index, value in enumerate(net)]
    if points:
        path = " ".join(f"{_px(x)},{_px(y)}" for x, y in points)
        body.append(f'<polyline class="net" points="{path}"/>')
        for (x, y), label, value in zip(points, labels, net, strict=True):
            text = tip("net", label, value)
            body.append(
                f'<circle class="net-point" cx="{_px(x)}" cy="{_px(y)}" r="3.5">'
                f"<title>{escape(text)}</title></circle>"
            )
    return _svg(chart_id, title, description, body)
