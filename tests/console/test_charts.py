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


def test_lines_are_drawn_in_order_with_their_own_strokes_and_a_legend() -> None:
    """A wide pale line first and a narrow dashed one over it: equal values
    leave both visible (the dashboard's accepted line was hidden under the
    processed one); each has a legend entry drawn with its stroke."""
    svg = line_chart(
        chart_id="c",
        title="t",
        lines=[
            Line("counted", [1, 2], "#8fcf8f", width=5, legend="counted <&>"),
            Line("received", [1, 2], "#205067", dashed=True),
        ],
        x_labels={},
    )
    drawn = re.findall(r'<polyline class="series" data-label="(\w+)"[^>]*>', svg)
    assert drawn == ["counted", "received"]  # the narrow one last, on top
    polylines = re.findall(r"<polyline [^>]*>", svg)
    assert 'stroke-width="5"' in polylines[0] and "stroke-dasharray" not in polylines[0]
    assert 'stroke-width="1.5"' in polylines[1] and 'stroke-dasharray="6 3"' in polylines[1]
    legend = re.findall(r'<g class="legend" data-label="(\w+)">(.*?)</g>', svg)
    assert [label for label, _ in legend] == ["counted", "received"]
    assert 'stroke-width="5"' in legend[0][1] and ">counted &lt;&amp;&gt;</text>" in legend[0][1]
    assert 'stroke-dasharray="6 3"' in legend[1][1] and ">received</text>" in legend[1][1]


def test_labels_are_escaped() -> None:
    svg = bar_chart(chart_id="b", title="<t>", bars=[("<script>", 3), ("ok", 1)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)  # drawn to 0.1 px
