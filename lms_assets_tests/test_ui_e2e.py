"""The real Dagster UI, used as a person uses it: `dagster dev`, a run of every asset, then Chromium.

Starts `dagster dev` on a free loopback port with a private instance, study copy, warehouse and outputs
folder; waits for the run the follow-up sensor launches on the instance's first start (it builds every
asset, as a person's first `make run` does) and reads that run's pages; then drives Debian's Chromium with
Playwright: the expanded lineage graph draws every asset's name in full, an asset's checks page shows the run's check
results, every chart opens at a legible width from its asset's page, printed_audit's markdown has no
strikethrough, the survival preview shows its median and CI columns, a printed value is traced from its check
to its raw file in three clicks (README "Tracing a printed number"), and the written study report fits a
1280 px window, reads as a document (bounded height, appendices folded, a contents link opens one, print shows
them) and rounds each value one way. Screenshots go to `test-artifacts/ui_e2e/`.
"""

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lms_assets.report.page import AUDIT_ALL_FIGURES
from lms_assets_tests.dagster_process import REPO, dagster_dev_args, instance_home, running
from lms_assets_tests.graphql_client import DagsterGraphQL, RunReport, free_port

ARTIFACTS = REPO / "test-artifacts" / "ui_e2e"
HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Ceilings of the waits (DagsterGraphQL): each returns as soon as it sees what it waits for, so they cost nothing
# when all is well and only have to be out of reach of a busy 2-core machine.
SERVER_START_TIMEOUT = 300  # the webserver answering GraphQL; fails at once if `dagster dev` exits
RUN_TIMEOUT = 240  # a run in which no step moved along for this long (DagsterGraphQL.wait_for_run)
PAGE_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1600, "height": 1100}
# The lineage graph is tall (groups stack); a tall window shows all of it with readable names.
LINEAGE_VIEWPORT = {"width": 1800, "height": 2600}

# The expanded lineage at the zoom that shows every asset must draw every name in full. Zoomed out that far (below
# its MINIMAL_SCALE, 0.6), Dagster 1.13 draws each asset as its "minimal" node, whose label withMiddleTruncation
# cuts to 18 characters ("raw_p…_allocations"): an asset name is readable there only if it is that short.
CHECKED_ASSET, CHECK_NAME = "adtte", "followup_cuts_consistent"
CHECK_PAGE_ATTEMPTS = 5
REPORT_ASSET = "study_report"

# Asset checks this test names; the published-figure checks may be regrouped (one per printed table), so
# every reference to a check name is here.
CHECK_NAMES = {
    # The section check holding the printed median PFS (Table 2, "4.1"): the value traced back to its raw file.
    "traced": ("survival_summary", "printed_table_2"),
}
# The trace walk of README "Tracing a printed number": from the check, the asset's Lineage tab, then one
# upstream node per click, down to the raw file.
TRACE_WALK = ["adtte", "raw_followup"]
CHART_ASSETS = ["waterfall_chart", "ae_chart", "km_pfs_chart", "km_os_chart", "forest_chart", "history_chart"]
MIN_CHART_WIDTH_PX = 600
PREVIEW_ASSET, PREVIEW_COLUMNS = "survival_summary", ["median", "ci_lower", "ci_upper"]
AUDIT_ASSET = "printed_audit"
REPORT_VIEWPORT = {"width": 1280, "height": 1000}
# The report's height in that window: as opened (appendices folded) and with every fold opened. Before the folds and
# compact appendices it was 40,464 px either way (every <details> open); now about 13,800 and 27,500.
REPORT_MAX_HEIGHT_PX = 16_000
REPORT_MAX_OPEN_HEIGHT_PX = 32_000
# Polls on a busy machine: the UI draws before its data arrives.
UI_DEADLINE = 90.0

# The UI asks local users once to join the community; a person clicks "Skip", which the UI remembers here.
DISMISS_COMMUNITY_DIALOG = "window.localStorage.setItem('communityNux', JSON.stringify('1'));"


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium driven by Playwright; nothing downloads a browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            context.add_init_script(DISMISS_COMMUNITY_DIALOG)
            yield context
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# True when the element's centre is inside the window and nothing (a header, a panel) is drawn over it.
_UNCOVERED_ON_SCREEN = """el => {
    const r = el.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (r.width === 0 || x < 0 || y < 0 || x > window.innerWidth || y > window.innerHeight) return false;
    const top = document.elementFromPoint(x, y);
    return !!top && (top === el || el.contains(top) || top.contains(el));
}"""


# True when reaching the element scrolled a container sideways: the reader would not see it at first.
_SCROLLED_SIDEWAYS = """el => {
    for (let node = el.parentElement; node; node = node.parentElement) if (node.scrollLeft > 0) return true;
    return false;
}"""


def in_viewport(page, text: str) -> bool:
    """Whether an element showing exactly ``text`` is on screen and not hidden under anything."""
    found = page.get_by_text(text, exact=True)
    return any(found.nth(i).evaluate(_UNCOVERED_ON_SCREEN) for i in range(found.count()))


# The labels drawn in the graph's nodes that are on screen and not covered: each node's name, whole or cut, and
# whether a box of its node that hides overflow cuts it off at a side (the text may be whole and still not all shown).
_DRAWN_LABELS = (
    """() => [...document.querySelectorAll('svg foreignObject *')]
    .filter(el => el.children.length === 0 && el.textContent.trim())
    .filter(el => ("""
    + _UNCOVERED_ON_SCREEN
    + """)(el))
    .map(el => {
        const r = el.getBoundingClientRect();
        let clipped = false;
        for (let box = el.parentElement; box && box.tagName.toLowerCase() !== 'foreignobject'; box = box.parentElement) {
            const b = box.getBoundingClientRect();
            if (getComputedStyle(box).overflowX !== 'visible' && (r.left < b.left - 0.5 || r.right > b.right + 0.5)) clipped = true;
        }
        return {text: el.textContent.trim(), clipped};
    })"""
)
# The graph's zoom: its viewport draws the layout through ``transform: matrix(scale, 0, 0, scale, x, y)``.
_GRAPH_SCALE = """() => {
    const view = document.querySelector('div[style*="matrix("]');
    return view ? new DOMMatrix(view.style.transform).a : null;
}"""


def drawn_as(name: str, labels: list[str]) -> str | None:
    """How the graph draws ``name``: whole, cut in the middle ("raw_p…_allocations"), or not at all (None)."""
    if name in labels:
        return name
    for label in labels:
        head, cut, tail = label.partition("…")
        if cut and len(head) + len(tail) < len(name) and name.startswith(head) and name.endswith(tail):
            return label
    return None


def open_lineage_graph(page, base_url: str, names: list[str]) -> tuple[dict[str, str | None], list[str], float | None]:
    """The global lineage graph with every group expanded, zoomed out step by step until each of ``names`` is
    drawn on screen (whole or cut): the zoom that fits them all.

    Returns how each name is drawn there (``drawn_as``), the labels its node's box cuts off, and the graph's zoom.
    """
    page.set_viewport_size(LINEAGE_VIEWPORT)
    page.goto(f"{base_url}/asset-groups")
    page.get_by_text("Global asset lineage").wait_for()
    page.locator("[aria-label=zoom_out]").wait_for()
    page.get_by_text("Hide navigation").click()
    # The graph's context menu offers "Expand all groups" (⌥E); groups start collapsed.
    page.mouse.click(LINEAGE_VIEWPORT["width"] - 300, LINEAGE_VIEWPORT["height"] - 150, button="right")
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.wait_for_timeout(1000)
    for _ in range(10):
        labels = [label["text"] for label in page.evaluate(_DRAWN_LABELS)]
        if all(drawn_as(n, labels) for n in names):
            break
        page.locator("[aria-label=zoom_out]").click()
        page.wait_for_timeout(400)
    # Nodes that came into view fetch their latest status; let them draw it before the screenshot.
    page.wait_for_timeout(1500)
    drawn = page.evaluate(_DRAWN_LABELS)
    labels = [label["text"] for label in drawn]
    clipped = sorted({label["text"] for label in drawn if label["clipped"]})
    return {n: drawn_as(n, labels) for n in names}, clipped, page.evaluate(_GRAPH_SCALE)


def open_checks(page, base_url: str, asset: str, check: str, expected: str) -> str:
    """The asset's Checks tab with ``check`` selected; returns the evaluation result it shows.

    The page draws before its live data arrives, so it is read (and reloaded) until it shows
    ``expected`` or a bounded wait ends; then whatever it shows is returned.
    """
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{asset}?view=checks")
    shown = ""
    for attempt in range(CHECK_PAGE_ATTEMPTS):
        if attempt:
            page.wait_for_timeout(3000)
            page.reload()
        page.get_by_text(check, exact=True).first.click()
        page.get_by_text("Evaluation result").wait_for()
        result = page.locator("text=Evaluation result").locator("xpath=following::*[self::div or self::span][normalize-space()][1]")
        shown = result.first.inner_text().strip()
        if shown == expected:
            break
    return shown


def report_images(page, report: Path) -> list[dict]:
    """Open the report file as a reader does and measure every chart image."""
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    return page.eval_on_selector_all(
        "figure img",
        """imgs => imgs.map(img => ({
            alt: img.alt,
            complete: img.complete,
            naturalWidth: img.naturalWidth,
            naturalHeight: img.naturalHeight,
            width: img.getBoundingClientRect().width,
            height: img.getBoundingClientRect().height,
        }))""",
    )


def poll(check, what: str, deadline: float = UI_DEADLINE, page=None):
    """``check()`` until it returns something truthy or ``deadline`` seconds pass (then fail naming ``what``)."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline:.0f} s: {what}")
        if page is not None:
            page.wait_for_timeout(500)
        else:
            time.sleep(0.5)


def metadata_dialog(page, label: str):
    """Open the "[Show Markdown]" pop-up of the metadata entry ``label`` on the asset page shown; returns the dialog."""
    row = page.locator("tr", has=page.get_by_text(label, exact=True)).filter(has=page.get_by_text("[Show Markdown]"))
    poll(lambda: row.count() > 0, f"metadata entry {label!r} on {page.url}", page=page)
    dialog = page.get_by_role("dialog")

    # The asset page re-renders its metadata when the live data arrives, and a click that lands in between opens
    # nothing (seen once in CI): click again, only while no pop-up is open, until one is.
    def opened() -> bool:
        if not dialog.count():
            row.first.get_by_text("[Show Markdown]").click()
            page.wait_for_timeout(500)
        return dialog.count() > 0 and dialog.first.is_visible()

    poll(opened, f"the pop-up of metadata entry {label!r} on {page.url}", page=page)
    return dialog


def close_dialog(page) -> None:
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="detached")


def chart_image(page, base_url: str, asset: str) -> dict:
    """The chart image one click from the asset's page (its first metadata entry), measured once loaded."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{asset}")
    dialog = metadata_dialog(page, "chart")
    image = dialog.locator("img").first
    image.wait_for()
    measure = "img => ({complete: img.complete, naturalWidth: img.naturalWidth, width: img.getBoundingClientRect().width})"
    shown = poll(lambda: (m := image.evaluate(measure))["complete"] and m, f"{asset}'s chart loaded", page=page)
    page.screenshot(path=str(ARTIFACTS / f"6-chart-{asset}.png"))
    close_dialog(page)
    return shown


def audit_strikethrough(page, base_url: str) -> dict[str, int]:
    """Strikethrough elements (<del>, <s>) in printed_audit's markdown: inline entries and every pop-up."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{AUDIT_ASSET}")
    links = page.get_by_text("[Show Markdown]")
    poll(lambda: links.count() > 0, f"{AUDIT_ASSET}'s markdown entries", page=page)
    found = {"page": page.locator("del, s").count()}
    for i in range(links.count()):
        links.nth(i).click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        found[f"pop-up {i + 1}"] = dialog.locator("del, s").count()
        page.screenshot(path=str(ARTIFACTS / f"7-audit-{i + 1}.png"))
        close_dialog(page)
    return found


def preview_columns_on_screen(page, base_url: str, asset: str, columns: list[str]) -> list[str]:
    """The columns of the asset's preview table a reader sees without scrolling sideways (header cells on screen, uncovered)."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{asset}")
    headers = page.locator("th")
    poll(lambda: all(headers.filter(has_text=re.compile(f"^{c}$")).count() for c in columns), f"{asset}'s preview headers {columns}", page=page)
    shown = []
    for column in columns:
        cell = headers.filter(has_text=re.compile(f"^{column}$")).first
        cell.evaluate("el => el.scrollIntoView({block: 'center', inline: 'nearest'})")
        if cell.evaluate(_UNCOVERED_ON_SCREEN) and not cell.evaluate(_SCROLLED_SIDEWAYS):
            shown.append(column)
    page.screenshot(path=str(ARTIFACTS / f"8-preview-{asset}.png"))
    return shown


def trace_walk(page, base_url: str, asset: str, check: str, walk: list[str]) -> tuple[int, str]:
    """From the check's page, the clicks to the raw file: the asset's Lineage tab, then each upstream node of
    ``walk`` in turn. Returns the clicks made and the page reached."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{asset}?view=checks")
    page.get_by_text(check, exact=True).first.click()
    page.get_by_text("Evaluation result").wait_for()
    screenshot(page, "9-trace-check")
    page.get_by_role("tab", name="Lineage").click()
    clicks = 1
    for step, node in enumerate(walk, start=1):
        target = page.get_by_text(node, exact=True)
        poll(lambda target=target: target.count() > 0 and target.first.is_visible(), f"{node} in the lineage of {page.url}", page=page)
        target.first.click()
        clicks += 1
        poll(lambda node=node: f"/assets/{node}" in page.url, f"the page of {node}", page=page)
        page.screenshot(path=str(ARTIFACTS / f"9-trace-{step}-{node}.png"))
    return clicks, page.url


def open_folds(page) -> None:
    """Open every folded table of the report as a reader does: a click on its summary line."""
    for fold in page.locator("details").all():
        if not fold.evaluate("d => d.open"):
            fold.locator("summary").click()


_PAGE_HEIGHT = "document.documentElement.scrollHeight"


def report_layout(page, report: Path) -> dict:
    """The report in a 1280 px window: its height as opened and with every fold open, whether the contents' link to
    the folded table of all printed figures opens it, and the height each folded table takes when printed."""
    page.set_viewport_size(REPORT_VIEWPORT)
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    folded = page.locator("details:not([open])").count()
    as_opened = page.evaluate(_PAGE_HEIGHT)
    page.locator(f"nav.contents a[href='#{AUDIT_ALL_FIGURES}']").click()
    link_opens = page.locator(f"#{AUDIT_ALL_FIGURES}").evaluate("t => t.closest('details').open && t.getBoundingClientRect().height > 0")
    page.goto(report.resolve().as_uri())
    page.emulate_media(media="print")
    printed = page.eval_on_selector_all("details table", "tables => tables.map(t => t.getBoundingClientRect().height)")
    page.emulate_media(media="screen")
    open_folds(page)
    return {"folded": folded, "as_opened": as_opened, "all_open": page.evaluate(_PAGE_HEIGHT), "link_opens": link_opens, "printed": printed}


def wide_tables(page, report: Path) -> list[dict]:
    """Tables of the report wider than a 1280 px window, opened as a reader opens the file, every fold opened."""
    page.set_viewport_size(REPORT_VIEWPORT)
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    screenshot(page, "10-report-1280")
    open_folds(page)
    screenshot(page, "11-report-1280-open")
    return page.eval_on_selector_all(
        "table",
        """(tables) => tables
            .map((t, i) => ({index: i, caption: (t.caption || {}).innerText || '', width: Math.max(t.scrollWidth, t.getBoundingClientRect().right)}))
            .filter(t => t.width > window.innerWidth)""",
    )


def two_roundings(text: str, values: list[float]) -> list[tuple[float, str, str]]:
    """Values the text shows at one precision but rounded two ways: directly (5.2375258 → 5.238) and through a
    rounder intermediate (5.2375 → 5.237, the binary double of 5.2375 lying just below the half), which is how
    issue 18 found 5.238 in one table and 5.237 in another."""
    from decimal import ROUND_HALF_UP, Decimal

    def half_up(number: str, digits: int) -> str:
        return str(Decimal(number).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))

    tokens = set(re.findall(r"(?<![\d.])\d+\.\d+(?![\d.])", text))
    both = []
    for value in values:
        for digits in (1, 2, 3):
            direct = half_up(repr(value), digits)
            finer = f"{value:.{digits + 1}f}"
            others = {f"{value:.{digits}f}", f"{float(finer):.{digits}f}", half_up(finer, digits)} - {direct}
            both += [(value, direct, other) for other in sorted(others) if direct in tokens and other in tokens]
    return both


def table_floats(warehouse: Path, tables: list[str]) -> list[float]:
    """Every finite float in the given warehouse tables."""
    import math

    import duckdb

    values = []

    def connect():
        # A run the sensor started may be writing (DuckDB then holds the file's lock): try again.
        try:
            return duckdb.connect(str(warehouse), read_only=True)
        except duckdb.IOException:
            return None

    with poll(connect, f"a read-only connection to {warehouse}") as con:
        for table in tables:
            frame = con.sql(f"select * from {table}").pl()
            for column, dtype in frame.schema.items():
                if dtype.is_float():
                    values += [v for v in frame[column].drop_nulls().to_list() if math.isfinite(v)]
    return values


ROUNDED_TABLES = ["survival_summary", "response_summary", "baseline_summary", "tumour_shrinkage", "ae_summary"]


def assert_run_completed(run: RunReport, every_asset: set[str], log_tail: str) -> None:
    """The run succeeded and materialized every asset, the report included; otherwise say what stopped it."""
    assert run.status == "SUCCESS", f"{run.describe()}\n--- dagster dev log ---\n{log_tail}"
    assert REPORT_ASSET in every_asset and run.materialized == every_asset, sorted(every_asset - run.materialized)


@pytest.mark.slow
def test_dagster_ui_end_to_end(study_dir: Path, tmp_path: Path):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    port = free_port(HOST)
    base_url = f"http://{HOST}:{port}"
    outputs = tmp_path / "outputs"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(instance_home(tmp_path / "dagster_home")),
        "LMS_DATA_DIR": str(study_dir),
        "LMS_DUCKDB_PATH": str(tmp_path / "warehouse" / "lms.duckdb"),
        "LMS_OUTPUT_DIR": str(outputs),
    }
    with running(dagster_dev_args("lms_assets.definitions", HOST, port), env, ARTIFACTS / "dagster-dev.log") as server:
        client = DagsterGraphQL(base_url)
        client.wait_until_up(SERVER_START_TIMEOUT, alive=server.alive)

        # The first start of an instance builds everything through the sensor (README): its run is the run whose
        # pages the test reads, as a person's first `make run` shows them. It must have materialized every asset
        # (assert_run_completed). A second whole-graph run launched by the test would only repeat that build, and
        # two runs of one asset at once interleave its check evaluations (the UI then shows "Not evaluated").
        run_id = client.wait_for_job_run("followup_refresh", timeout=RUN_TIMEOUT)
        run = client.run_report(run_id)
        # Nothing else may still be running when the UI is compared with the run (a check's latest execution).
        client.wait_until_idle(timeout=RUN_TIMEOUT)
        every_asset = client.asset_keys()
        assert_run_completed(run, every_asset, server.log_tail())
        check_in_run = next(c for c in run.checks if (c.asset, c.check_name) == (CHECKED_ASSET, CHECK_NAME))
        # The report as a reader finds it: the file its latest materialization links.
        report_metadata = client.latest_materialization_metadata(REPORT_ASSET)
        report = Path(report_metadata["report"])
        assert report.is_relative_to(outputs.resolve()) and report.is_file(), report

        with chromium() as context:
            page = context.new_page()

            page.goto(f"{base_url}/runs/{run_id}")
            page.get_by_text("Success", exact=False).first.wait_for()
            screenshot(page, "1-run")

            # What a reader needs from the pages of issue 18; every problem is collected, then all are reported.
            problems = []
            # Every asset of the definitions, by the name the graph draws (its key's last part).
            drawn, clipped, scale = open_lineage_graph(page, base_url, sorted({key.split("/")[-1] for key in every_asset}))
            screenshot(page, "2-lineage")
            not_drawn = [n for n, label in drawn.items() if label is None]
            cut_off = {
                n: label if label != n else "whole, but its node's box cuts it off"
                for n, label in drawn.items()
                if label and (label != n or label in clipped)
            }
            if not_drawn or cut_off:
                problems.append(f"expanded lineage at zoom {scale}: not on screen {not_drawn}; names cut off (drawn as) {cut_off}")

            expected = "Passed" if check_in_run.passed else "Failed"
            shown = open_checks(page, base_url, CHECKED_ASSET, CHECK_NAME, expected)
            screenshot(page, "3-checks")
            assert shown == expected, f"{CHECKED_ASSET}.{CHECK_NAME}: the UI shows {shown!r}, the run says {expected!r}"

            for asset in CHART_ASSETS:
                chart = chart_image(page, base_url, asset)
                if min(chart["naturalWidth"], chart["width"]) < MIN_CHART_WIDTH_PX:
                    problems.append(f"{asset}: chart {chart['naturalWidth']} px, shown {chart['width']:.0f} px wide")
            strikes = {where: n for where, n in audit_strikethrough(page, base_url).items() if n}
            if strikes:
                problems.append(f"{AUDIT_ASSET}: strikethrough elements in its markdown {strikes}")
            on_screen = preview_columns_on_screen(page, base_url, PREVIEW_ASSET, PREVIEW_COLUMNS)
            if on_screen != PREVIEW_COLUMNS:
                problems.append(f"{PREVIEW_ASSET}'s preview shows {on_screen} of {PREVIEW_COLUMNS} without scrolling sideways")
            traced_asset, traced_check = CHECK_NAMES["traced"]
            clicks, reached = trace_walk(page, base_url, traced_asset, traced_check, TRACE_WALK)
            if clicks > 3 or f"/assets/{TRACE_WALK[-1]}" not in reached:
                problems.append(f"trace walk from {traced_check}: {clicks} clicks, reached {reached}")
            layout = report_layout(page, report)
            if not layout["folded"] or layout["as_opened"] > REPORT_MAX_HEIGHT_PX or layout["all_open"] > REPORT_MAX_OPEN_HEIGHT_PX:
                problems.append(
                    f"report {layout['as_opened']} px tall as opened ({layout['folded']} folds; at most {REPORT_MAX_HEIGHT_PX}), "
                    f"{layout['all_open']} px with every fold open (at most {REPORT_MAX_OPEN_HEIGHT_PX})"
                )
            if not layout["link_opens"]:
                problems.append(f"the report's contents link to #{AUDIT_ALL_FIGURES} does not open its folded table")
            if len(layout["printed"]) != layout["folded"] or not all(h > 0 for h in layout["printed"]):
                problems.append(f"folded report tables not printed: heights when printed {layout['printed']}")
            # Every fold opened, so the widths and roundings below see the whole report.
            wide = wide_tables(page, report)
            if wide:
                problems.append(f"report tables wider than {REPORT_VIEWPORT['width']} px: {wide}")
            doubled = two_roundings(page.inner_text("body"), table_floats(Path(env["LMS_DUCKDB_PATH"]), ROUNDED_TABLES))
            if doubled:
                problems.append(f"report values shown at two roundings (value, half-up, binary): {doubled}")
            page.set_viewport_size(VIEWPORT)

            images = report_images(page, report)
            screenshot(page, "4-report")
            page.locator("#charts").screenshot(path=str(ARTIFACTS / "5-report-charts.png"))
            assert len(images) == report_metadata["charts"] > 0, images
            for image in images:
                assert image["complete"] and image["naturalWidth"] > 0 and image["naturalHeight"] > 0, image
                assert image["width"] > 0 and image["height"] > 0, image
    assert not problems, "\n".join(problems)


def test_two_roundings_finds_a_value_rounded_through_an_intermediate():
    ci_upper = 5.237525857483835  # the PFS CI upper bound: 5.238 directly, 5.237 through 5.2375
    assert two_roundings("Table 2: 5.238; Figure 1: 5.237", [ci_upper]) == [(ci_upper, "5.238", "5.237")]
    assert two_roundings("Table 2: 5.238; Figure 1: 5.24", [ci_upper]) == []


def test_drawn_labels_tell_whole_cut_and_clipped_names_apart():
    # Three nodes as the graph draws them: a whole name, one cut in the middle, one whole but wider than its box.
    node = '<foreignObject x="0" y="{y}" width="400" height="30"><div style="width: {w}px; overflow: hidden; white-space: nowrap"><span>{name}</span></div></foreignObject>'
    nodes = [(0, 300, "adsl"), (40, 300, "raw_p…_allocations"), (80, 40, "survival_landmarks")]
    svg = "".join(node.format(y=y, w=w, name=name) for y, w, name in nodes)
    with chromium() as context:
        page = context.new_page()
        page.set_content(f'<svg width="400" height="120">{svg}</svg>')
        labels = page.evaluate(_DRAWN_LABELS)
    assert labels == [
        {"text": "adsl", "clipped": False},
        {"text": "raw_p…_allocations", "clipped": False},
        {"text": "survival_landmarks", "clipped": True},
    ]
    texts = [label["text"] for label in labels]
    assert drawn_as("adsl", texts) == "adsl" and drawn_as("raw_patient_allocations", texts) == "raw_p…_allocations"
    assert drawn_as("raw_patients", texts) is None
