"""The server-drawn SVG charts: the y axis' top is a round figure at or above
the largest value, points are placed by value, labels are escaped."""

from __future__ import annotations

import re

import pytest

from console.charts import Line, bar_chart, line_chart, nice_ceiling


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1), (0.3, 1), (1, 1), (3, 5), (7, 10), (11, 20), (240, 250), (1001, 2000)],
)
def test_the_axis_top_is_a_round_figure_at_or_above(value: float, top: float) -> None:
    assert nice_ceiling(value) == top


def test_a_line_goes_from_the_bottom_to_the_top_of_the_plot() -> None:
    svg = line_chart(
        chart_id="c", title="t", lines=[Line("a", [0, 5, 10], "#000")], x_labels={0: "00:00"}
    )
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert ys[0] > ys[1] > ys[2]  # SVG's y grows downwards
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])
    assert 'data-total="15"' in svg and ">00:00</text>" in svg


def test_labels_are_escaped() -> None:
    svg = bar_chart(chart_id="b", title="<t>", bars=[("<script>", 3), ("ok", 1)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)  # drawn to 0.1 px
