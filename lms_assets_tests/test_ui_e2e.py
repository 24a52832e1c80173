"""The real Dagster UI, used as a person uses it: `dagster dev`, a run of every asset, then Chromium.

Starts `dagster dev` on a free loopback port with a private instance, study copy, warehouse and outputs
folder; launches the `full_refresh` job through GraphQL and waits for that run (a sensor may launch a
run of its own meanwhile; runs queue on the `duckdb` pool); then drives Debian's Chromium with
Playwright: the lineage graph shows the study's assets, an asset's checks page shows the run's check
results, and the written study report shows its charts. Screenshots go to `test-artifacts/ui_e2e/`.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

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
SERVER_START_TIMEOUT = 120
RUN_TIMEOUT = 240
PAGE_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1600, "height": 1100}
# The lineage graph is tall (groups stack); a tall window shows all of it with readable names.
LINEAGE_VIEWPORT = {"width": 1800, "height": 2600}

# Assets a reader must find in the lineage graph. The graph must show every asset whose name it draws
# in full (zoomed out, it shortens longer names in the middle: "raw_p…_allocations"), so all of it is on screen.
LINEAGE_ASSETS = ["raw_followup", "quarantine", "adsl", "adtte", "figure_audit", "study_report"]
NAMES_DRAWN_IN_FULL = 18
CHECKED_ASSET, CHECK_NAME = "adtte", "followup_cuts_consistent"
CHECK_PAGE_ATTEMPTS = 5
REPORT_ASSET = "study_report"

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


def in_viewport(page, text: str) -> bool:
    """Whether an element showing exactly ``text`` is on screen and not hidden under anything."""
    found = page.get_by_text(text, exact=True)
    return any(found.nth(i).evaluate(_UNCOVERED_ON_SCREEN) for i in range(found.count()))


def open_lineage_graph(page, base_url: str, names: list[str]) -> list[str]:
    """The global lineage graph with every group expanded, zoomed out until ``names`` are all on screen.

    Returns the names still not on screen after the last zoom step.
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
        missing = [n for n in names if not in_viewport(page, n)]
        if not missing:
            break
        page.locator("[aria-label=zoom_out]").click()
        page.wait_for_timeout(400)
    # Nodes that came into view fetch their latest status; let them draw it before the screenshot.
    page.wait_for_timeout(1500)
    return [n for n in names if not in_viewport(page, n)]


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
        result = page.locator("text=Evaluation result").locator(
            "xpath=following::*[self::div or self::span][normalize-space()][1]"
        )
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

        run_id = client.launch_job("full_refresh")
        run = client.wait_for_run(run_id, timeout=RUN_TIMEOUT)
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

            every_short_name = sorted(n for n in every_asset if len(n) <= NAMES_DRAWN_IN_FULL and "/" not in n)
            assert set(LINEAGE_ASSETS) <= set(every_short_name), every_short_name
            missing = open_lineage_graph(page, base_url, every_short_name)
            screenshot(page, "2-lineage")
            assert not missing, f"not drawn in the lineage graph: {missing}"

            expected = "Passed" if check_in_run.passed else "Failed"
            shown = open_checks(page, base_url, CHECKED_ASSET, CHECK_NAME, expected)
            screenshot(page, "3-checks")
            assert shown == expected, f"{CHECKED_ASSET}.{CHECK_NAME}: the UI shows {shown!r}, the run says {expected!r}"

            images = report_images(page, report)
            screenshot(page, "4-report")
            page.locator("#charts").screenshot(path=str(ARTIFACTS / "5-report-charts.png"))
            assert len(images) == report_metadata["charts"] > 0, images
            for image in images:
                assert image["complete"] and image["naturalWidth"] > 0 and image["naturalHeight"] > 0, image
                assert image["width"] > 0 and image["height"] > 0, image
