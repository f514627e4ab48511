"""Charts drawn on the server as inline SVG: no script, no network, nothing to
serve but the page. Values are escaped; the SVG has a ``<title>`` per chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

__all__ = ["Line", "bar_chart", "line_chart", "nice_ceiling"]

_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 56, 12, 30, 26
_LEGEND_Y = 12


@dataclass(frozen=True)
class Line:
    """One series; lines are drawn in order, so a wide pale line first and a
    narrow dashed one over it both stay visible where their values are equal."""

    label: str
    values: Sequence[float]
    color: str
    width: float = 1.5
    dashed: bool = False
    legend: str = ""  # the legend's text (default: the label)

    def stroke(self) -> str:
        dash = ' stroke-dasharray="6 3"' if self.dashed else ""
        return f'stroke="{escape(self.color)}" stroke-width="{self.width:g}"{dash}'


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
    """Lines over the same points (the index is the x axis), drawn in order, a
    legend above them."""
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
            f' data-total="{sum(line.values):.0f}" fill="none" {line.stroke()}'
            f' points="{points}"/>'
        )
    parts += _legend(lines)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every value above is a number or escaped


def _legend(lines: Sequence[Line]) -> list[str]:
    """A sample of each line's stroke and its text, left to right above the plot."""
    out, x = [], float(_PAD_LEFT)
    for line in lines:
        text = line.legend or line.label
        out.append(
            f'<g class="legend" data-label="{escape(line.label)}">'
            f'<line x1="{x:.0f}" y1="{_LEGEND_Y}" x2="{x + 24:.0f}" y2="{_LEGEND_Y}"'
            f" {line.stroke()}/>"
            f'<text x="{x + 30:.0f}" y="{_LEGEND_Y + 4}">{escape(text)}</text></g>'
        )
        x += 30 + 6.2 * len(text) + 24  # ~6 px a character at font-size 11
    return out


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
