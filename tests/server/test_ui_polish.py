"""What a new user saw at first glance, checked in a real Chromium: numbers rounded with the exact
value a hover away, run ids in their own case, chart labels inside their charts."""

from __future__ import annotations

import pytest

from tests.server.conftest import bearer
from tests.server.test_browser import _login, browser  # noqa: F401 (the Chromium fixture)

# Every text of an SVG chart against the chart's own box (its viewBox), in the browser's layout.
OUTSIDE = """svg => { const v = svg.viewBox.baseVal, out = [];
  for (const t of svg.querySelectorAll('text')) { const b = t.getBBox();
    if (b.x < -0.5 || b.y < -0.5 || b.x + b.width > v.width + 0.5 || b.y + b.height > v.height + 0.5)
      out.push([t.textContent, b.x, b.y, b.width, b.height, v.width, v.height]); }
  return out; }"""


def _compare(browser, server, tokens, runs):  # noqa: F811
    page = _login(browser, server, tokens.reader)
    page.goto(f"{server}/runs/compare?" + "&".join(f"run={r}" for r in runs))
    return page


def test_metrics_are_rounded_with_the_exact_value_in_a_title(browser, server, tokens, runs, client, tmp_path):  # noqa: F811
    page = _compare(browser, server, tokens, runs)
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    details = [client.get(f"{server}/api/v1/runs/{r}", headers=bearer(tokens.reader)).json() for r in runs]
    exact = {repr(v) for d in details for v in d["metrics"].values() if isinstance(v, float)}
    assert any(len(v) > 8 for v in exact)  # loss = 1/3: a value with many digits
    numbers = page.locator("#compared-runs span.num, table.grid span.num")
    assert numbers.count() >= 2 * len(details)
    for i in range(numbers.count()):
        shown, title = numbers.nth(i).inner_text(), numbers.nth(i).get_attribute("title")
        assert float(title) == pytest.approx(float(shown.replace(",", "")), rel=1e-3), (shown, title)
        assert len(shown.lstrip("-").replace(".", "").lstrip("0")) <= 4 or float(title) >= 10_000, shown
    assert {numbers.nth(i).get_attribute("title") for i in range(numbers.count())} >= exact
    assert "0.3333333333333333" not in page.locator("main").inner_text()


def test_run_ids_keep_their_case_in_compare_headers(browser, server, tokens, runs):  # noqa: F811
    page = _compare(browser, server, tokens, runs)
    first, second = runs
    for table in ("table.config-diff", "table.grid:has(th:text-is('field'))", "table.grid:has(th:text-is('metric'))"):
        headers = page.locator(f"{table} th").all_inner_texts()
        assert headers[-2:] == [first, second], (table, headers)


def test_chart_labels_stay_inside_their_charts(browser, server, tokens, runs, tmp_path):  # noqa: F811
    from lensvault.server import svg

    long_class = "traffic-light-with-a-very-long-class-name"
    charts = [
        svg.lines({"2026-11-30T03-20Z-a1b2c3": [(0, -123456.789), (10, 0.000012345)],
                   "a-run-whose-name-is-much-longer-than-the-chart-is-wide-" * 2: [(0, 1.5), (10, 2.5)]},
                  title="validation/mean_average_precision_at_iou_0.50_to_0.95_over_all_classes_and_sizes"),
        svg.bars([(long_class, 123456.0), ("car", 3.0)], unit=" imgs"),
        svg.grouped_bars([(long_class, [0.912345, 0.000123]), ("time_of_day=night", [0.5, None])],
                         ["run-with-a-really-quite-long-identifier-0001" * 2, "b"]),
    ]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_content("<style>svg text { font-size:12px; font-family:system-ui, sans-serif; }</style>" + "".join(charts))
    page.screenshot(path=str(tmp_path / "charts.png"), full_page=True)
    drawn = page.locator("svg")
    assert drawn.count() == 3
    for i in range(3):
        assert drawn.nth(i).evaluate(OUTSIDE) == [], charts[i][:60]
    # The whole label stays one hover away.
    assert page.locator("svg.bars g > title", has_text=long_class).count() == 1

    # And on the pages themselves: a version's charts, the compare page's curves and bars.
    page = _compare(browser, server, tokens, runs)
    for selector in ("svg.chart", "svg.grouped-bars"):
        for i in range(page.locator(selector).count()):
            assert page.locator(selector).nth(i).evaluate(OUTSIDE) == [], selector
    page.goto(f"{server}/datasets/shapes/1.0.1")
    for i in range(page.locator("svg.bars").count()):
        assert page.locator("svg.bars").nth(i).evaluate(OUTSIDE) == []
