"""The real Dagster UI, used as a person uses it: `make run`'s processes, a run of every asset, then Chromium.

Starts the launcher `make run` starts (`dagster dev` and the report server) on free loopback ports with a private
instance, study copy, warehouse and outputs folder; waits for the run the follow-up sensor launches on the
instance's first start (it builds every asset, as a person's first `make run` does) and reads that run's pages;
then drives Debian's Chromium with Playwright at 1440 × 900: each asset group's lineage draws every asset's name in
full; no asset or check page strikes text through or holds a metadata text wider than its box; a printed value is
traced from its asset's Checks tab to its ADaM rows and raw lines in two clicks (README "Tracing a printed
number"); every chart's link opens its page and the chart fits the window; and the served study report fits the
window, reads as a document, rounds each value one way and prints with no page that holds only a heading.
Screenshots go to `test-artifacts/ui_e2e/`.
"""

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lms_assets.definitions import build_defs
from lms_assets.defs.graphs import CHART_NAMES
from lms_assets.graphs.km import RECONSTRUCTED_CENSOR
from lms_assets.report.page import AUDIT_ALL_VALUES
from lms_assets_tests.dagster_process import REPO, instance_home, running, venv_bin
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
SERVER_START_TIMEOUT = 300  # the webserver answering GraphQL; fails at once if the launcher exits
RUN_TIMEOUT = 240  # a run in which no step moved along for this long (DagsterGraphQL.wait_for_run)
PAGE_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1440, "height": 900}
# A group's lineage can be tall; a tall window shows all of it at a zoom that draws its names.
LINEAGE_VIEWPORT = {"width": 1800, "height": 2600}

CHECKED_ASSET, CHECK_NAME = "adtte", "followup_cuts_consistent"
CHECK_PAGE_ATTEMPTS = 5
REPORT_ASSET = "study_report"
# The printed value README "Tracing a printed number" traces: Table 2's median PFS (4.1), from its check's page.
TRACED_ASSET, TRACED_CHECK, TRACED_VALUE = "survival_summary", "printed_table_2", "T2.pfs.median"
PATIENTS = 19
# The pages a reviewer reads most, each with the check whose panel is opened on it (None: the asset page only).
READ_PAGES = {"survival_summary": "printed_table_2", "response_summary": "printed_table_2", "printed_audit": None, "km_pfs_chart": None}
CHART_ASSETS = list(CHART_NAMES)
# The report's height in a 1440 px window: as opened (appendices folded) and with every fold open. Eight charts
# (the swimmer and the subgroup panels among them) take about 9,000 px of it.
REPORT_MAX_HEIGHT_PX = 19_000
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


def group_lineage(page, base_url: str, group: str, names: list[str]) -> tuple[dict[str, str | None], list[str], float | None]:
    """The lineage of one asset group (the graph filtered to ``group:"<group>"``, as its group link opens it), zoomed
    out step by step until each of ``names`` is drawn on screen (whole or cut).

    Returns how each name is drawn there (``drawn_as``), the labels its node's box cuts off, and the graph's zoom.
    """
    page.set_viewport_size(LINEAGE_VIEWPORT)
    page.goto(f"{base_url}/asset-groups~group%3A%22{group}%22")
    page.get_by_text("Global asset lineage").wait_for()
    page.locator("[aria-label=zoom_out]").wait_for()
    for _ in range(10):
        labels = [label["text"] for label in page.evaluate(_DRAWN_LABELS)]
        if all(drawn_as(n, labels) for n in names):
            break
        page.locator("[aria-label=zoom_out]").click()
        page.wait_for_timeout(400)
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


def report_images(page, report: str) -> list[dict]:
    """Open the served report as a reader does and measure every chart image."""
    page.goto(report)
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


# Text a reader cannot see whole: an element of the asset page's main column or of a check's panel whose content is
# wider than its box (the UI scrolls or clips it sideways). Dagster's own middle-truncated names are measured too.
_TOO_WIDE = """() => [...document.querySelectorAll('[class*=assetEventMetadataScrollContainer], [class*=assetEventMetadataScrollContainer] *, main *')]
    .filter(el => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
    .map(el => `${el.tagName.toLowerCase()} ${el.scrollWidth}>${el.clientWidth}: ${el.innerText.slice(0, 60).replace(/\\s+/g, ' ')}`)"""


def page_problems(page, base_url: str, asset: str, check: str | None) -> list[str]:
    """What a reader cannot read on ``asset``'s page (and on ``check``'s panel): struck-through text, or text wider
    than its box. Waits for the metadata to be drawn before it measures."""
    page.set_viewport_size(VIEWPORT)
    problems = []
    views = [(f"{base_url}/assets/{asset}", "Metadata")]
    if check:
        views.append((f"{base_url}/assets/{asset}?view=checks&checkDetail={check}", "Latest execution"))
    for url, heading in views:
        page.goto(url)
        page.get_by_text(heading, exact=True).first.wait_for()
        poll(lambda: page.locator("table").count() > 0, f"the tables of {url}", page=page)
        page.wait_for_timeout(1500)
        screenshot(page, f"3-{asset}-{'check' if 'checkDetail' in url else 'page'}")
        struck = page.locator("del, s, strike").count()
        if struck:
            problems.append(f"{url}: {struck} struck-through element(s)")
        wide = page.evaluate(_TOO_WIDE)
        if wide:
            problems.append(f"{url}: text wider than its box: {wide[:5]}")
    return problems


def trace_printed_value(page, base_url: str, asset: str, check: str, value: str) -> tuple[int, object]:
    """From the asset's Checks tab, the clicks README "Tracing a printed number" makes: the check, then its
    ``trace <value>`` link, which opens the value's trace in a new tab. Returns the clicks and that tab."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{asset}?view=checks")
    page.get_by_text(check, exact=True).first.click()
    link = page.locator("tr", has=page.get_by_text(f"trace {value}", exact=True)).locator("a").first
    poll(lambda: link.count() > 0 and link.is_visible(), f"the link 'trace {value}' on {check}'s panel", page=page)
    screenshot(page, "4-trace-check")
    with page.context.expect_page() as opened:
        link.click()
    trace = opened.value
    trace.wait_for_load_state("load")
    trace.set_viewport_size(VIEWPORT)
    trace.screenshot(path=str(ARTIFACTS / "4-trace.png"))
    return 2, trace


def traced_rows(trace, value: str) -> list[dict[str, str]]:
    """The ADaM rows the trace section of ``value`` lists, as the reader sees them (header cell → text), if it is on screen."""
    section = trace.locator(f"section[id='{value}']")
    if not section.locator("h2").evaluate(_UNCOVERED_ON_SCREEN):
        return []
    return section.locator("table").first.evaluate(
        "t => [...t.tBodies[0].rows].map(r => Object.fromEntries([...r.cells].map((c, i) => [t.tHead.rows[0].cells[i].innerText, c.innerText])))"
    )


def chart_fits(page, base_url: str, asset: str) -> str | None:
    """Open the chart's page from the first entry of its asset's metadata, as a reader does; None when the drawn
    chart fits the window, else what is wrong."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{asset}")
    link = page.locator("tr", has=page.get_by_text("chart page", exact=True)).locator("a").first
    poll(lambda: link.count() > 0, f"{asset}'s chart page link", page=page)
    with page.context.expect_page() as opened:
        link.click()
    chart = opened.value
    chart.set_viewport_size(VIEWPORT)
    drawn = chart.locator(".vega-embed svg, .vega-embed canvas").first
    drawn.wait_for()
    box = drawn.bounding_box()
    chart.screenshot(path=str(ARTIFACTS / f"5-chart-{asset}.png"))
    chart.close()
    if box is None or box["width"] < 300:
        return f"{asset}: no chart drawn on its page"
    if box["x"] + box["width"] > VIEWPORT["width"]:
        return f"{asset}: chart {box['width']:.0f} px wide at x {box['x']:.0f}, wider than the {VIEWPORT['width']} px window"
    # The second entry: the picture, served beside the page, whole in the window.
    link = page.locator("tr", has=page.get_by_text("picture", exact=True)).locator("a").first
    with page.context.expect_page() as opened:
        link.click()
    picture = opened.value
    picture.set_viewport_size(VIEWPORT)
    width = poll(
        lambda: picture.evaluate("() => { const i = document.images[0]; return i && i.complete && i.naturalWidth; }"),
        f"{asset}'s picture",
        page=picture,
    )
    picture.close()
    if width > VIEWPORT["width"]:
        return f"{asset}: picture {width} px wide, wider than the {VIEWPORT['width']} px window"
    return None


def reconstruction_marks(page, base_url: str, report_url: str) -> None:
    """Values resting on reconstructed inputs say so where a reader meets them: the check's table (basis), ADTTE's
    preview (OS_AVALRFL), the OS chart's page (its legend entry) and the report (≠* and its legend)."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"{base_url}/assets/{TRACED_ASSET}?view=checks&checkDetail={TRACED_CHECK}")
    poll(lambda: page.get_by_text("reconstructed", exact=True).count() > 0, f"'reconstructed' in {TRACED_CHECK}'s table", page=page)
    page.goto(f"{base_url}/assets/adtte")
    poll(lambda: page.get_by_text("OS_AVALRFL", exact=True).count() > 0, "the reconstructed-OS flag in ADTTE's preview", page=page)
    chart = page.context.new_page()
    chart.goto(report_url.replace("report/study_report.html", "charts/km_os_chart.html"))
    assert json.dumps(RECONSTRUCTED_CENSOR)[1:-1] in chart.content(), "the OS chart's page has no legend entry for reconstructed censorings"
    chart.close()
    page.goto(report_url)
    text = page.inner_text("body")
    assert "≠*" in text and "reconstructed" in text, "the report marks no value as resting on reconstruction"


def heading_only_pages(page, report_url: str) -> list[int]:
    """The pages of the report printed to PDF (A4 landscape, its print CSS) whose only text is a heading."""
    from pypdf import PdfReader

    page.goto(report_url)
    page.wait_for_load_state("load")
    headings = {" ".join(t.split()) for t in page.locator("h1, h2, h3, caption, summary").all_inner_texts()}
    pdf = ARTIFACTS / "report.pdf"
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    pages = []
    for number, printed in enumerate(PdfReader(pdf).pages, start=1):
        lines = [" ".join(line.split()) for line in printed.extract_text().splitlines() if line.strip()]
        if lines and all(line in headings for line in lines):
            pages.append(number)
    return pages


def open_folds(page) -> None:
    """Open every folded table of the report as a reader does: a click on its summary line."""
    for fold in page.locator("details").all():
        if not fold.evaluate("d => d.open"):
            fold.locator("summary").click()


_PAGE_HEIGHT = "document.documentElement.scrollHeight"


def report_layout(page, report: str) -> dict:
    """The report in a 1280 px window: its height as opened and with every fold open, whether the contents' link to
    the folded table of all printed values opens it, and the height each folded table takes when printed."""
    page.set_viewport_size(VIEWPORT)
    page.goto(report)
    page.wait_for_load_state("load")
    folded = page.locator("details:not([open])").count()
    as_opened = page.evaluate(_PAGE_HEIGHT)
    page.locator(f"nav.contents a[href='#{AUDIT_ALL_VALUES}']").click()
    link_opens = page.locator(f"#{AUDIT_ALL_VALUES}").evaluate("t => t.closest('details').open && t.getBoundingClientRect().height > 0")
    page.goto(report)
    page.emulate_media(media="print")
    printed = page.eval_on_selector_all("details table", "tables => tables.map(t => t.getBoundingClientRect().height)")
    page.emulate_media(media="screen")
    open_folds(page)
    return {"folded": folded, "as_opened": as_opened, "all_open": page.evaluate(_PAGE_HEIGHT), "link_opens": link_opens, "printed": printed}


def wide_tables(page, report: str) -> list[dict]:
    """Tables of the report wider than a 1280 px window, opened as a reader opens the file, every fold opened."""
    page.set_viewport_size(VIEWPORT)
    page.goto(report)
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


def asset_groups() -> dict[str, list[str]]:
    """Each asset group of the definitions and the names of its assets."""
    graph = build_defs().resolve_asset_graph()
    groups: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, []).append(key.path[-1])
    return {group: sorted(names) for group, names in groups.items()}


def assert_run_completed(run: RunReport, every_asset: set[str], log_tail: str) -> None:
    """The run succeeded and materialized every asset, the report included; otherwise say what stopped it."""
    assert run.status == "SUCCESS", f"{run.describe()}\n--- dagster dev log ---\n{log_tail}"
    assert REPORT_ASSET in every_asset and run.materialized == every_asset, sorted(every_asset - run.materialized)


def make_run(study_dir: Path, tmp_path: Path) -> tuple[str, list[str], dict[str, str]]:
    """What `make run` starts (Makefile, run): the launcher, which serves the outputs folder and starts `dagster dev`,
    on free loopback ports with a private instance, warehouse and outputs folder over ``study_dir``. Returns the UI's
    address, the command and its environment."""
    port, report_port = free_port(HOST), free_port(HOST)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(instance_home(tmp_path / "dagster_home")),
        "LMS_DATA_DIR": str(study_dir),
        "LMS_DUCKDB_PATH": str(tmp_path / "warehouse" / "lms.duckdb"),
        "LMS_OUTPUT_DIR": str(tmp_path / "outputs"),
        # As the launcher would set it, so the test knows where the report is served.
        "LMS_REPORT_URL": f"http://{HOST}:{report_port}",
    }
    launcher = [venv_bin("python"), "-m", "lms_assets.infra.launcher", "--report-port", str(report_port), "-h", HOST, "-p", str(port)]
    return f"http://{HOST}:{port}", launcher, env


@pytest.mark.slow
def test_dagster_ui_end_to_end(study_dir: Path, tmp_path: Path):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    base_url, launcher, env = make_run(study_dir, tmp_path)
    report_port = urlsplit(env["LMS_REPORT_URL"]).port
    with running(launcher, env, ARTIFACTS / "make-run.log") as server:
        client = DagsterGraphQL(base_url)
        client.wait_until_up(SERVER_START_TIMEOUT, alive=server.alive)

        # The first start of an instance builds everything through the sensor (README): its run is the run whose
        # pages the test reads, as a person's first `make run` shows them. A second whole-graph run launched by the
        # test would only repeat that build, and two runs of one asset at once interleave its check evaluations.
        run_id = client.wait_for_job_run("followup_refresh", timeout=RUN_TIMEOUT)
        run = client.run_report(run_id)
        # Nothing else may still be running when the UI is compared with the run (a check's latest execution).
        client.wait_until_idle(timeout=RUN_TIMEOUT)
        every_asset = client.asset_keys()
        assert_run_completed(run, every_asset, server.log_tail())
        check_in_run = next(c for c in run.checks if (c.asset, c.check_name) == (CHECKED_ASSET, CHECK_NAME))
        # The report as a reader finds it: the served page its asset links to.
        report_url = str(client.latest_materialization_metadata(REPORT_ASSET)["report_page"])
        assert report_url.startswith(f"http://{HOST}:{report_port}/"), report_url

        with chromium() as context:
            page = context.new_page()
            page.goto(f"{base_url}/runs/{run_id}")
            page.get_by_text("Success", exact=False).first.wait_for()
            screenshot(page, "1-run")

            # Every problem a reader would meet is collected, then all are reported.
            problems = []
            # The whole graph (42 assets) fits a screen only at a zoom that draws no labels: each group's lineage
            # is read at the zoom that fits it, as a reader opens it from the group's link.
            for group, names in sorted(asset_groups().items()):
                drawn, clipped, scale = group_lineage(page, base_url, group, names)
                screenshot(page, f"2-lineage-{group}")
                not_drawn = [n for n, label in drawn.items() if label is None]
                cut_off = {
                    n: label if label != n else "whole, but its node's box cuts it off"
                    for n, label in drawn.items()
                    if label and (label != n or label in clipped)
                }
                if not_drawn or cut_off:
                    problems.append(f"lineage of {group} at zoom {scale}: not on screen {not_drawn}; names cut off (drawn as) {cut_off}")

            expected = "Passed" if check_in_run.passed else "Failed"
            shown = open_checks(page, base_url, CHECKED_ASSET, CHECK_NAME, expected)
            assert shown == expected, f"{CHECKED_ASSET}.{CHECK_NAME}: the UI shows {shown!r}, the run says {expected!r}"

            for asset, check in READ_PAGES.items():
                problems += page_problems(page, base_url, asset, check)

            clicks, trace = trace_printed_value(page, base_url, TRACED_ASSET, TRACED_CHECK, TRACED_VALUE)
            rows = traced_rows(trace, TRACED_VALUE)
            if clicks > 3 or len(rows) != PATIENTS or any(r["PARAMCD"] != "PFS" or not r["SRCFILE"] or not r["SRCROW"].isdigit() for r in rows):
                problems.append(f"trace of {TRACED_VALUE}: {clicks} clicks from the Checks tab, {len(rows)} rows on screen: {rows[:3]}")
            if (
                trace.locator(f"section[id='{TRACED_VALUE}'] pre").count() == 0
                or "SHA-256" not in trace.locator(f"section[id='{TRACED_VALUE}']").inner_text()
            ):
                problems.append(f"trace of {TRACED_VALUE}: no raw lines with their file's SHA-256")
            trace.close()

            problems += [wrong for asset in CHART_ASSETS if (wrong := chart_fits(page, base_url, asset))]
            reconstruction_marks(page, base_url, report_url)

            layout = report_layout(page, report_url)
            if not layout["folded"] or layout["as_opened"] > REPORT_MAX_HEIGHT_PX or layout["all_open"] > REPORT_MAX_OPEN_HEIGHT_PX:
                problems.append(
                    f"report {layout['as_opened']} px tall as opened ({layout['folded']} folds; at most {REPORT_MAX_HEIGHT_PX}), "
                    f"{layout['all_open']} px with every fold open (at most {REPORT_MAX_OPEN_HEIGHT_PX})"
                )
            if not layout["link_opens"]:
                problems.append(f"the report's contents link to #{AUDIT_ALL_VALUES} does not open its folded table")
            if len(layout["printed"]) != layout["folded"] or not all(h > 0 for h in layout["printed"]):
                problems.append(f"folded report tables not printed: heights when printed {layout['printed']}")
            # Every fold opened, so the widths and roundings below see the whole report.
            wide = wide_tables(page, report_url)
            if wide:
                problems.append(f"report tables wider than {VIEWPORT['width']} px: {wide}")
            doubled = two_roundings(page.inner_text("body"), table_floats(Path(env["LMS_DUCKDB_PATH"]), ROUNDED_TABLES))
            if doubled:
                problems.append(f"report values shown at two roundings (value, half-up, binary): {doubled}")
            alone = heading_only_pages(page, report_url)
            if alone:
                problems.append(f"report printed to PDF: pages {alone} hold only a heading")

            images = report_images(page, report_url)
            screenshot(page, "6-report")
            assert len(images) == len(CHART_ASSETS), images
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
