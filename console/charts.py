"""Charts drawn on the server as inline SVG: no script, no network, nothing to
serve but the page. Values are escaped; the SVG has a ``<title>`` per chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

__all__ = ["Line", "bar_chart", "line_chart", "nice_ceiling"]

_DASHED = ' stroke-dasharray="5 3"'
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 56, 12, 12, 26


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[float]
    color: str
    dashed: bool = False  # a line drawn over another stays visible when they are equal


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n at or above ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def _number(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:g}"


def _axes(width: int, height: int, top: float, x_labels: dict[int, str], n: int) -> list[str]:
    inner_w, inner_h = width - _PAD_LEFT - _PAD_RIGHT, height - _PAD_TOP - _PAD_BOTTOM
    out = []
    for i in range(5):  # horizontal grid lines and the y axis' figures
        y = _PAD_TOP + inner_h * i / 4
        out.append(
            f'<line x1="{_PAD_LEFT}" y1="{y:.1f}" x2="{width - _PAD_RIGHT}" y2="{y:.1f}"'
            ' stroke="#ddd"/>'
            f'<text x="{_PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_number(top * (4 - i) / 4)}</text>"
        )
    for index, label in x_labels.items():
        x = _PAD_LEFT + inner_w * index / max(1, n - 1)
        out.append(
            f'<line x1="{x:.1f}" y1="{_PAD_TOP}" x2="{x:.1f}" y2="{height - _PAD_BOTTOM}"'
            ' stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{escape(label)}</text>'
        )
    return out


def line_chart(
    *,
    chart_id: str,
    title: str,
    lines: Sequence[Line],
    x_labels: dict[int, str],
    width: int = 760,
    height: int = 200,
) -> SafeString:
    """Lines over the same points (the index is the x axis), a legend above."""
    n = max((len(line.values) for line in lines), default=0)
    top = nice_ceiling(max((max(line.values, default=0) for line in lines), default=0))
    inner_w, inner_h = width - _PAD_LEFT - _PAD_RIGHT, height - _PAD_TOP - _PAD_BOTTOM
    parts = [
        f'<svg id="{escape(chart_id)}" class="console-chart" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        ' font-size="11" font-family="sans-serif" role="img">',
        f"<title>{escape(title)}</title>",
        *_axes(width, height, top, x_labels, n),
    ]
    for line in lines:
        points = " ".join(
            f"{_PAD_LEFT + inner_w * i / max(1, n - 1):.1f},"
            f"{_PAD_TOP + inner_h * (1 - v / top):.1f}"
            for i, v in enumerate(line.values)
        )
        parts.append(
            f'<polyline class="series" data-label="{escape(line.label)}"'
            f' data-total="{sum(line.values):.0f}" fill="none" stroke="{escape(line.color)}"'
            f' stroke-width="1.5"{_DASHED if line.dashed else ""} points="{points}"/>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every value above is a number or escaped


def bar_chart(
    *, chart_id: str, title: str, bars: Sequence[tuple[str, int]], width: int = 560
) -> SafeString:
    """Horizontal bars, one per label, with its count."""
    row, label_w = 22, 180
    height = max(1, len(bars)) * row + 8
    top = max((v for _, v in bars), default=0) or 1
    parts = [
        f'<svg id="{escape(chart_id)}" class="console-chart" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        ' font-size="11" font-family="sans-serif" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(bars):
        y = 4 + i * row
        w = (width - label_w - 70) * value / top
        shown = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(shown)}</text>'
            f'<rect class="bar" data-label="{escape(label)}" data-value="{value}"'
            f' x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="#417690"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{value:,}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every value above is a number or escaped
