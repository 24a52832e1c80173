"""Hostile values in the study's records, read back through the real Dagster UI: the run's page and its logs, every
asset page and check panel whose definition or data holds a planted value (GraphQL says which), and every Markdown
dialog on them show the values as text.

The study copy carries Markdown and HTML where the platform takes free text: adverse-event terms (quarantined: not
in the declared vocabulary, then left out as study.toml allows), a printed value's text, a reviewed discrepancy's
reason, a provenance location and an unchecked claim's reason. One of them is an image on a TEST-NET address
(198.51.100.7, RFC 5737): the browser must not even ask for it. Every request to a host other than loopback is
recorded and aborted, so nothing leaves the machine whatever the UI does. `make run`'s processes are started as
test_ui_e2e starts them; screenshots of the views that show a problem go to `test-artifacts/ui_hostile/`.
"""

import csv
import io
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from lms_assets.records.errors import reveal
from lms_assets_tests.conftest import allow_exclusion
from lms_assets_tests.dagster_process import REPO, running
from lms_assets_tests.graphql_client import DagsterGraphQL
from lms_assets_tests.ui.test_ui_e2e import RUN_TIMEOUT, SERVER_START_TIMEOUT, UI_DEADLINE, chromium, make_run, poll

ARTIFACTS = REPO / "test-artifacts" / "ui_hostile"
# An address reserved for documentation (RFC 5737): nothing answers there, and the test aborts any request to it.
OUTSIDE = "198.51.100.7"
IMAGE = f"![i](http://{OUTSIDE}/x.png)"
HTML_IMAGE = f"<img src=http://{OUTSIDE}/y.png onerror=alert(1)>"
LINK_TEXT = "HOSTILE-LINK"
LINK = f"[{LINK_TEXT}](javascript:alert(1))"
STRUCK, EMPHASISED, STRONG = "~~HOSTILE-STRIKE~~", "*HOSTILE-EMPH*", "__HOSTILE-STRONG__"
STYLED = f"{STRUCK} {EMPHASISED} {STRONG}"
# A right-to-left override turns what follows around on screen ("Rash\u202egpj.exe" reads "Rashexe.jpg").
RLO = "\u202e"
RLO_TERM = f"Rash{RLO}gpj.exe"
AE_TERMS = (IMAGE, HTML_IMAGE, STYLED, RLO_TERM)
# Each planted value as the pages must show it somewhere: as written (a Markdown renderer would consume its syntax).
SHOWN_LITERALLY = (IMAGE, HTML_IMAGE, LINK, STRUCK, EMPHASISED, STRONG)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# A view counts as drawn when, after its ready text is shown, its text reads the same twice this far apart: the
# parts the UI draws later (tables, dialogs) change the text while they arrive.
SETTLE_MS = 300

# What a page made of data would hold: struck or emphasised planted words, script links, the planted link as a
# link, a link to the planted address (a bare URL autolinked; the log view's link of a URL in a plain-text line, shown
# as written, is Dagster's and cannot be escaped), images from anywhere but loopback, inline handlers, and the
# override character itself rather than revealed.
_MARKUP_FROM_DATA = """([linkText, rlo, loopback, outside]) => {
    const found = [];
    const where = el => `${el.tagName.toLowerCase()} '${(el.textContent || '').trim().slice(0, 60)}'`;
    for (const el of document.querySelectorAll('del, s, strike')) found.push(`struck-through ${where(el)}`);
    for (const el of document.querySelectorAll('em, strong, b, i'))
        if ((el.textContent || '').includes('HOSTILE-')) found.push(`emphasised ${where(el)}`);
    for (const a of document.querySelectorAll('a')) {
        if ((a.getAttribute('href') || '').trim().toLowerCase().startsWith('javascript:')) found.push(`script link ${where(a)}`);
        if ((a.textContent || '').trim() === linkText) found.push(`planted text as a link ${where(a)} -> ${a.getAttribute('href')}`);
        // A log line is plain text, and the log view links each URL in it, shown as written: only that is allowed.
        const urlInLogLine = a.closest('[class*=messageColumn]') && a.textContent.trim() === a.getAttribute('href');
        if (((a.getAttribute('href') || '') + a.textContent).includes(outside) && !urlInLogLine) found.push(`link to the planted address ${where(a)}`);
    }
    for (const img of document.querySelectorAll('img')) {
        const src = img.currentSrc || img.src;
        if (!src) continue;
        const url = new URL(src, location.href);
        if (!['data:', 'blob:'].includes(url.protocol) && !loopback.includes(url.hostname)) found.push(`image from ${src}`);
    }
    for (const el of document.querySelectorAll('[onerror], [onload], [onclick]')) found.push(`inline handler on ${where(el)}`);
    if (document.body.innerText.includes(rlo)) found.push('a right-to-left override shown as itself');
    return found;
}"""


def is_loopback(url: str) -> bool:
    """True for a URL the browser may load: loopback, or no host at all (data:, blob:, about:)."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or (parts.hostname or "") in LOOPBACK


def plant_hostile_values(study: Path) -> None:
    """Put the hostile values where the study's files take free text, and let quarantined rows be left out so the
    cohort publishes (the planted AE terms are outside the declared vocabulary).

    R's cross-check reads the record files itself and counts the left-out AE rows, so ``r_verification`` fails and
    the assets after it are not built: their pages are read as they are, with no materialization."""
    with (study / "adverse_events.csv").open("a", newline="") as events:
        csv.writer(events, lineterminator="\n").writerows([patient, term, 2, 1] for patient, term in enumerate(AE_TERMS, start=1))
    edit_cell(study / "printed_values.csv", "value_id", "T1.sex.male.n", "printed", lambda text: f"{text} {LINK} {STYLED}")
    edit_cell(study / "known_discrepancies.csv", "value_id", "RPC.age.median", "reason", lambda text: f"{text} {LINK} {IMAGE} {STYLED}")
    edit_cell(study / "provenance.csv", "file", "patients.csv", "location", lambda text: f"{text} {STYLED} {HTML_IMAGE}")
    edit_cell(study / "unchecked_claims.csv", "claim_id", "ABS.enrolment_window", "reason", lambda text: f"{text} {LINK} {IMAGE}")
    allow_exclusion(study)


def edit_cell(path: Path, key: str, value: str, column: str, change: Callable[[str], str]) -> None:
    """Rewrite ``column`` of the row whose ``key`` is ``value`` with ``change(old text)``."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert rows and key in rows[0] and column in rows[0], f"{path.name} has no column {key} or {column}"
    matching = [row for row in rows if row[key] == value]
    assert matching, f"{path.name} has no row whose {key} is {value}"
    for row in matching:
        row[column] = change(row[column])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())


class Visit:
    """One browser page over every view, with what each view showed: problems, text, screenshots."""

    def __init__(self, context, base_url: str):
        self.base_url = base_url
        self.outside: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.shots = 0
        context.on("request", lambda request: None if is_loopback(request.url) else self.outside.append(request.url))
        context.route("**/*", self._only_loopback)
        self.page = context.new_page()
        self.page.on("dialog", lambda dialog: (self.problems.append(f"a script opened a dialog: {dialog.message}"), dialog.dismiss()))

    def _only_loopback(self, route) -> None:
        # The request listener has recorded it; aborting it here means it never reaches the network.
        if is_loopback(route.request.url):
            route.continue_()
        else:
            route.abort()

    def open(self, path: str, ready: list[str], name: str) -> None:
        """Go to ``path`` inside the running UI, wait until one of ``ready`` is shown and the text stops changing,
        then inspect the view and each of its Markdown dialogs."""
        page = self.page
        if page.url.startswith(self.base_url):
            # In-app navigation, as a click on a link does: the UI's router follows the history, no reload.
            page.evaluate("p => { history.pushState(null, '', p); window.dispatchEvent(new PopStateEvent('popstate')); }", path)
        else:
            page.goto(self.base_url + path)
        shown = page.get_by_text(ready[0], exact=True)
        for text in ready[1:]:
            shown = shown.or_(page.get_by_text(text, exact=True))
        try:
            # Playwright's own wait returns as soon as the text is drawn (a poll would sleep past it).
            shown.first.wait_for(state="visible", timeout=UI_DEADLINE * 1000)
        except PlaywrightTimeout:
            self.problems.append(f"{path}: none of {ready} shown within {UI_DEADLINE:.0f} s")
        self.look(path, name)

    def look(self, where: str, name: str) -> str:
        """Inspect the view once its text is steady, then each of its Markdown dialogs; returns the view's text."""
        page = self.page
        self._settle()
        self.inspect(where, name)
        shown = self.text[-1]
        for index in range(page.get_by_text("[Show Markdown]").count()):
            page.get_by_text("[Show Markdown]").nth(index).click()
            dialog = page.get_by_role("dialog").last
            dialog.wait_for()
            self._settle()
            self.inspect(f"{where} (Markdown dialog {index + 1})", f"{name}-md{index + 1}")
            page.keyboard.press("Escape")
            dialog.wait_for(state="detached")
        return shown

    def _settle(self) -> None:
        """Wait until the page's text reads the same twice, ``SETTLE_MS`` apart: the UI draws before its data arrives."""
        end = time.monotonic() + UI_DEADLINE
        last = self.page.inner_text("body")
        while time.monotonic() < end:
            self.page.wait_for_timeout(SETTLE_MS)
            now = self.page.inner_text("body")
            if now == last:
                return
            last = now
        self.problems.append(f"{self.page.url}: still changing after {UI_DEADLINE:.0f} s")

    def inspect(self, where: str, name: str) -> None:
        self.shots += 1
        found = self.page.evaluate(_MARKUP_FROM_DATA, [LINK_TEXT, RLO, sorted(LOOPBACK), OUTSIDE])
        # A screenshot of each view that shows a problem (they are what a reader looks at), not of every view.
        if found:
            self.page.screenshot(path=str(ARTIFACTS / f"{self.shots:03d}-{name}.png"), full_page=False)
        self.problems += [f"{where}: {found}" for found in found]
        self.text.append(self.page.inner_text("body"))


# Text every planted value holds at least one of, also where JSON escapes the override character.
MARKERS = (OUTSIDE, "HOSTILE-", "gpj.exe")
_ENTRIES = """fragment entries on MetadataEntry { label description
    ... on TextMetadataEntry { text } ... on MarkdownMetadataEntry { mdStr } ... on UrlMetadataEntry { url }
    ... on PathMetadataEntry { path } ... on JsonMetadataEntry { jsonString }
    ... on TableMetadataEntry { table { records schema { columns { name description } } } }
    ... on TableSchemaMetadataEntry { schema { columns { name description } } } }"""
DEFINITIONS_QUERY = (
    "query { assetNodes { assetKey { path } description metadataEntries { ...entries }"
    " assetChecksOrError { ... on AssetChecks { checks { name description } } } } }\n" + _ENTRIES
)
RUN_DATA_QUERY = (
    """query RunData($runId: ID!, $cursor: String) { runOrError(runId: $runId) { ... on Run {
    eventConnection(afterCursor: $cursor) { cursor hasMore events { __typename
        ... on MaterializationEvent { assetKey { path } metadataEntries { ...entries } }
        ... on AssetCheckEvaluationEvent { evaluation { checkName description assetKey { path } metadataEntries { ...entries } } } } } } } }
"""
    + _ENTRIES
)


def carries(data: object) -> bool:
    return any(marker in json.dumps(data, ensure_ascii=False) for marker in MARKERS)


def views_carrying_data(client: DagsterGraphQL, run_id: str) -> tuple[dict[str, list[str]], set[str]]:
    """Each asset's checks, and the views whose definition or run data hold a planted value: asset keys, and
    ``asset/check`` names. A view whose data holds none cannot show one, so only these are opened in the browser."""
    nodes = client.execute(DEFINITIONS_QUERY)["assetNodes"]
    checks, carrying = {}, set()
    for node in nodes:
        asset = "/".join(node["assetKey"]["path"])
        declared = (node["assetChecksOrError"] or {}).get("checks", [])
        checks[asset] = sorted(c["name"] for c in declared)
        carrying |= {asset} if carries({k: v for k, v in node.items() if k != "assetChecksOrError"}) else set()
        carrying |= {f"{asset}/{c['name']}" for c in declared if carries(c)}
    cursor = None
    while True:
        connection = client.execute(RUN_DATA_QUERY, {"runId": run_id, "cursor": cursor})["runOrError"]["eventConnection"]
        for event in connection["events"]:
            if event["__typename"] == "MaterializationEvent" and carries(event):
                carrying.add("/".join(event["assetKey"]["path"]))
            elif event["__typename"] == "AssetCheckEvaluationEvent" and carries(event):
                evaluation = event["evaluation"]
                carrying.add(f"{'/'.join(evaluation['assetKey']['path'])}/{evaluation['checkName']}")
        cursor = connection["cursor"]
        if not connection["hasMore"]:
            return checks, carrying


@pytest.mark.slow
def test_every_page_shows_hostile_values_as_text(study_dir: Path, tmp_path: Path):
    """Every view of the run and of each asset and check that holds a hostile value: no request leaves
    loopback, no element is made from the data, and each value is shown as written somewhere (the override
    character as its code point)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    plant_hostile_values(study_dir)
    base_url, launcher, env = make_run(study_dir, tmp_path)
    started = time.monotonic()
    with running(launcher, env, ARTIFACTS / "make-run.log") as server:
        client = DagsterGraphQL(base_url)
        client.wait_until_up(SERVER_START_TIMEOUT, alive=server.alive)
        # The instance's first start builds every asset (README): that run's pages are the ones read.
        run_id = client.wait_for_job_run("followup_refresh", timeout=RUN_TIMEOUT)
        client.wait_until_idle(timeout=RUN_TIMEOUT)
        run = client.run_report(run_id)
        checks, carrying = views_carrying_data(client, run_id)
        built = time.monotonic()

        with chromium() as context:
            visit = Visit(context, base_url)
            visit.open(f"/runs/{run_id}", ["Success", "Failure"], "run")
            # The run's log lines that carry a planted value: the log list draws only the lines on screen.
            visit.page.get_by_placeholder("Filter").first.fill(OUTSIDE)
            # The filtered lines arrive after the filter is typed, later on a busy machine: wait for them, then look.
            try:
                poll(lambda: IMAGE in visit.page.inner_text("body"), f"the log lines showing {IMAGE!r}", page=visit.page)
            except AssertionError:
                visit.problems.append(f"the log lines of the quarantined terms do not show {IMAGE!r} as written")
            visit.look(f"/runs/{run_id} logs filtered by {OUTSIDE}", "run-logs")
            for asset in sorted(checks):
                name = asset.replace("/", "-")
                if asset in carrying:
                    visit.open(f"/assets/{asset}", ["Metadata"] if asset in run.materialized else [asset], name)
                # The Checks tab is its checks' list beside one check's panel: each panel showing data is opened.
                for check in checks[asset]:
                    if f"{asset}/{check}" in carrying:
                        visit.open(f"/assets/{asset}?view=checks&checkDetail={check}", ["Latest execution"], f"{name}-{check}")
        visited = time.monotonic()

    shown = "\n".join(visit.text)
    problems = [f"a request to a host other than loopback: {url}" for url in sorted(set(visit.outside))] + visit.problems
    problems += [f"never shown as written: {value!r}" for value in (*SHOWN_LITERALLY, reveal(RLO_TERM)) if value not in shown]
    print(f"build {built - started:.0f} s, {visit.shots} views in {visited - built:.0f} s; run {run.status}")
    assert not problems, "\n".join(problems)


def test_only_loopback_and_inline_urls_may_load():
    assert is_loopback("http://127.0.0.1:3000/graphql") and is_loopback("http://localhost/x") and is_loopback("http://[::1]:80/")
    assert is_loopback("data:image/png;base64,AAAA") and is_loopback("blob:http://127.0.0.1/1")
    assert not is_loopback(f"http://{OUTSIDE}/x.png") and not is_loopback("https://dagster.io/") and not is_loopback("http://127.0.0.1.example.com/")


def test_the_page_check_finds_markup_made_from_data():
    """The browser-side check, on a page holding each thing it looks for, and on one holding the values as text."""
    made = (
        f"<del>x</del><em>HOSTILE-EMPH</em><a href='javascript:alert(1)'>x</a><a href='/x'>{LINK_TEXT}</a>"
        f"<img src='http://{OUTSIDE}/x.png'><p onclick='x()'>y</p><p>Rash{RLO}gpj.exe</p><a href='http://{OUTSIDE}/'>x</a>"
    )
    as_text = "".join(f"<p>{v.replace('&', '&amp;').replace('<', '&lt;')}</p>" for v in SHOWN_LITERALLY) + "<img src='data:image/png;base64,AAAA'>"
    with chromium() as context:
        page = context.new_page()
        context.route("**/*", lambda route: route.abort())
        page.set_content(made)
        found = page.evaluate(_MARKUP_FROM_DATA, [LINK_TEXT, RLO, sorted(LOOPBACK), OUTSIDE])
        page.set_content(as_text)
        clean = page.evaluate(_MARKUP_FROM_DATA, [LINK_TEXT, RLO, sorted(LOOPBACK), OUTSIDE])
    kinds = [
        "struck-through",
        "emphasised",
        "script link",
        "planted text as a link",
        "planted address",
        "image from",
        "inline handler",
        "right-to-left",
    ]
    assert all(any(kind in f for f in found) for kind in kinds), found
    assert clean == []
