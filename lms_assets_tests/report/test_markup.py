"""Injection-safe outputs: data-borne text in every HTML the platform writes is shown as text, never run.

Each page is opened in Debian's Chromium with a corpus of script payloads in the data; no dialog may fire
and no script error may occur. A control page saved the way Altair does by default proves the browser check
catches the attack it looks for. Free-text AE terms are held to the schema's declared vocabulary.
"""

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import altair as alt
import polars as pl
import pytest
from markdown_it import MarkdownIt

from lms_assets.adam.adae import derive_adae
from lms_assets.defs.markdown import escape_markdown, plain_text
from lms_assets.defs.metadata import preview
from lms_assets.defs.report import CHART_NAMES, REPORT_FILE
from lms_assets.graphs import adverse_events, render
from lms_assets.records.errors import reveal
from lms_assets.tables import toxicity
from lms_assets_tests.conftest import SHIPPED_STUDY, run_assets
from lms_assets_tests.tables.test_toxicity import raw_adverse_events
from lms_assets_tests.ui.test_ui_e2e import chromium

PAYLOADS = (
    "Rash</script><script>alert('script-close')</script>",
    "</SCRIPT ><script>alert('upper-case close')</script>",
    "<!--<script>",  # script-data escape state: would swallow the real </script>
    "<img src=x onerror=alert('img-onerror')>",
    "\"><svg onload=alert('attribute-break')>",
    "'><details open ontoggle=alert('single-quote-break')>",
    "\u2028alert('line-separator')\u2029",
    "${alert('template')}{{constructor.constructor('alert(1)')()}}",
    "&lt;script&gt;alert('double-decode')&lt;/script&gt;",
    "javascript:alert('url')",
    "]]><script>alert('cdata')</script>",
    "<style>*{background:url('javascript:alert(1)')}</style>",
)


CHART_DRAWN = ".vega-embed canvas, .vega-embed svg"

CHART_PAYLOADS = tuple(p for p in PAYLOADS if "\u2028" not in p)


def open_pages(paths: list[Path], controls: tuple[Path, ...] = ()) -> dict[Path, dict]:
    """Each page loaded in Chromium: the dialogs it opened, its script errors, its visible text and, for a
    chart, whether Vega drew it and the spec it drew. A control page is one whose payload is expected to run
    (and break its chart): its drawing is not waited for, which would only run out the context's timeout."""
    seen = {}
    with chromium() as context:
        for path in paths:
            page = context.new_page()
            dialogs, errors = [], []
            page.on("dialog", lambda dialog, found=dialogs: (found.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error, found=errors: found.append(str(error)))
            page.goto(path.resolve().as_uri(), wait_until="load")
            found = {"dialogs": dialogs, "errors": errors, "text": page.inner_text("body"), "chart_drawn": False}
            if path not in controls and "vega-visualization" in path.read_text(encoding="utf-8"):
                try:
                    page.wait_for_selector(CHART_DRAWN, state="attached")  # the context's default timeout bounds the wait
                    found.update(chart_drawn=True, spec=page.evaluate("() => JSON.stringify(spec)"))
                except Exception as err:  # a page whose script was broken draws nothing; the test says so
                    errors.append(f"no chart drawn: {err}")
            seen[path] = found
            page.close()
    return seen


def payload_ae_chart() -> alt.TopLevelMixin:
    """Table 4's chart with the payloads as terms (as if the vocabulary let them through).

    Not the line separator: Vega-Lite puts the explicit term order into a Vega expression, whose lexer
    refuses U+2028, so that chart would not draw at all (no script runs either; the vocabulary keeps such a
    term out of the chart).
    """
    events = [(i + 1, term, 1, 1 + i % 4) for i, term in enumerate(CHART_PAYLOADS)]
    adsl = pl.DataFrame({"SUBJID": list(range(1, len(events) + 1)), "DOSREDFL": ["N"] * len(events), "DISCAEFL": ["N"] * len(events)})
    rows, terms = adverse_events.ae_chart_data(
        toxicity.ae_summary(derive_adae(raw_adverse_events(*events), studyid=SHIPPED_STUDY.studyid), adsl), max_terms=len(CHART_PAYLOADS)
    )
    return adverse_events.ae_chart(rows, terms)


@pytest.mark.slow
def test_a_chart_with_script_payloads_in_its_data_runs_none_of_them(tmp_path: Path):
    chart = payload_ae_chart()
    safe = render.save_html(chart, tmp_path / "ae_chart.html")
    # Control: the same chart as Altair saves it by default.
    unsafe = tmp_path / "altair_default.html"
    chart.save(str(unsafe), format="html", inline=True)

    seen = open_pages([safe, unsafe], controls=(unsafe,))

    assert seen[unsafe]["dialogs"], "control: Altair's default page should run the payload, or the check proves nothing"
    page = seen[safe]
    assert page["dialogs"] == [] and page["errors"] == []
    assert page["chart_drawn"]
    # The terms reach Vega unchanged: escaped for the script block, not altered.
    terms = {v["term"] for dataset in json.loads(page["spec"])["datasets"].values() for v in dataset if "term" in v}
    assert set(CHART_PAYLOADS) <= terms


def test_embedded_json_escapes_what_could_end_a_script_block():
    text = json.dumps({"term": PAYLOADS[0], "amp": "a & b"}, cls=render.ScriptSafeJSONEncoder)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"term": PAYLOADS[0], "amp": "a & b"}


def _with_payload_terms(adverse_events: Path) -> list[tuple[int, str]]:
    """Adds one row per payload (patient 1, its own episode) to adverse_events.csv; returns (line, term)."""
    lines = adverse_events.read_text().splitlines()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    added = []
    for i, term in enumerate(PAYLOADS):
        writer.writerow([1, term, 1, 1])
        added.append((len(lines) + i + 1, term))
    adverse_events.write_text("\n".join(lines) + "\n" + out.getvalue())
    return added


def test_an_ae_term_outside_the_declared_vocabulary_is_quarantined_with_the_list(platform_env):
    added = _with_payload_terms(platform_env["data"] / "adverse_events.csv")
    result = run_assets("quarantine", paths=platform_env)
    assert result.success
    quarantine = result.output_for_node("ingest", "quarantine")
    problems = quarantine.filter((pl.col("file") == "adverse_events.csv") & (pl.col("column") == "term"))

    # Values are read with surrounding white space (U+2028/U+2029 included) stripped.
    assert sorted(problems.select("row", "value").iter_rows()) == sorted((line, term.strip()) for line, term in added)
    assert set(problems["reason"]) == {f"not one of {', '.join(SHIPPED_STUDY.values('adverse_events', 'term'))}"}


def _with_payload_provenance(provenance: Path) -> None:
    """Every payload in the free-text ``location`` of provenance.csv, which the report prints."""
    rows = list(csv.reader(io.StringIO(provenance.read_text())))
    location = rows[0].index("location")
    for i, row in enumerate(rows[1:]):
        row[location] = f"{row[location]} {PAYLOADS[i % len(PAYLOADS)]}"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    provenance.write_text(out.getvalue())


@pytest.mark.slow
def test_every_written_page_shows_data_borne_payloads_as_text(platform_env):
    """The whole graph on a study whose free text carries payloads; every chart and the report opened in Chromium."""
    _with_payload_provenance(platform_env["data"] / "provenance.csv")
    assert run_assets("study_report", paths=platform_env).success
    outputs = platform_env["outputs"]
    charts = sorted((outputs / "charts").glob("*.html"))
    assert {p.stem for p in charts} == set(CHART_NAMES)
    report = outputs / REPORT_FILE

    seen = open_pages([*charts, report])

    for path, page in seen.items():
        assert page["dialogs"] == [], f"{path.name} ran script: {page['dialogs']}"
        assert page["errors"] == [], f"{path.name}: {page['errors']}"
    assert all(seen[p]["chart_drawn"] for p in charts)
    # The provenance payloads are in the report as text (the page shows them; it did not parse them).
    shown = seen[report]["text"]
    for payload in PAYLOADS[:6]:
        assert payload.strip() in shown, payload


class _Cells(HTMLParser):
    """The text of every table cell and every element name in rendered HTML."""

    def __init__(self):
        super().__init__()
        self.cells, self.tags, self._in_cell = [], set(), False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "td":
            self.cells.append("")
            self._in_cell = True

    def handle_endtag(self, tag):
        self._in_cell = self._in_cell and tag != "td"

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def test_a_preview_keeps_each_payload_as_stored_text_and_markdown_shows_it_escaped():
    """Previews are table metadata, which the UI shows as text: each cell is the stored value. Where text from the data
    must enter Markdown (a check's description), escape_markdown makes CommonMark show it as stored, not as markup."""
    stored = [
        *PAYLOADS,
        "*emphasis* _too_ and `code` [a link](javascript:alert(1)) ~~struck~~ a|b ![i](http://127.0.0.1:9/x.png)",
        "bare https://198.51.100.7/x, www.example.org and someone@example.org",
    ]
    # Invisible and bidi characters as code points (errors.reveal), everything else as stored.
    assert [r.data["value"] for r in preview(pl.DataFrame({"value": stored}), limit=len(stored)).records] == [reveal(v) for v in stored]
    for value in stored:
        cells = _Cells()
        rendered = MarkdownIt("commonmark", {"html": True}).render(escape_markdown(value))
        cells.feed(rendered)
        # A URL or address is a code span, which GFM does not autolink (Dagster's renderer links one in text).
        assert cells.tags <= {"p", "code"}, rendered
        assert HTMLText.of(rendered) == " ".join(value.split()), rendered
        assert not re.search(r"(?i)https?://|www\.|\w@", HTMLText.of(re.sub("<code>.*?</code>", "", rendered))), rendered
        assert plain_text(escape_markdown(value)) == value.replace("\r", " ").replace("\n", " ")


class HTMLText(HTMLParser):
    """The text of rendered HTML, entities decoded, white space folded."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return " ".join("".join(parser.parts).split())


def test_a_report_table_shows_each_payload_as_text_and_breaks_only_over_long_runs():
    """The report's cells: escaped payloads, with break opportunities (``<wbr>``) only inside runs too long for a page."""
    from lms_assets.graphs import render
    from lms_assets.report import markup

    long_run = "A" * 70 + "<script>alert('long')</script>" + "B" * 70
    stored = [*PAYLOADS, long_run]
    rendered = markup.table_html(pl.DataFrame({"value": stored}), "payloads — data cut 2021-03-31")
    cells = _Cells()
    cells.feed(rendered)
    assert cells.tags <= {"table", "caption", "thead", "tbody", "tr", "th", "td", "wbr"}, cells.tags
    assert [c.strip() for c in cells.cells] == [reveal(render.clip(v, markup.REPORT_CELL_CHARS)).strip() for v in stored]
    # Only the over-long run is broken, and never inside a payload's escaped character (&lt; stays whole).
    assert rendered.count("<wbr>") == len(long_run) // (markup.LONGEST_UNBROKEN // 2)
    assert "&l<wbr>" not in rendered and "&lt<wbr>" not in rendered


class _Markup(HTMLParser):
    """Every element, attribute name, link target and text of rendered HTML, the style blocks' text apart."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.links, self.text, self.style, self._in_style = set(), set(), [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        self.links += [value for name, value in attrs if name == "href"]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.style if self._in_style else self.text).append(data)


def test_a_great_tables_report_table_shows_each_payload_as_text():
    """Tables 1, 2 and 4 are great_tables tables: payloads in every data-borne text they show (a row's label and group,
    the printed text and value id, the audit's reason) stay text, and nothing the page loads comes from elsewhere."""
    from lms_assets.report import comparison, markup, tables
    from lms_assets.tables.printed import values_frame

    payloads = [p for p in PAYLOADS if p.strip()]
    keys = [f"k{i}" for i in range(len(payloads))]
    spine = pl.DataFrame({"key": keys, "group": payloads, "label": payloads})
    values = values_frame([(f"{key}.n", 1, []) for key in keys])
    registry = pl.DataFrame(
        [(f"T9.{payload}", "Table 9", f"{key}.n", payload, 2.0, 0) for key, payload in zip(keys, payloads)],
        schema={"value_id": pl.String, "source": pl.String, "quantity": pl.String, "printed": pl.String, "value": pl.Float64, "decimals": pl.Int64},
        orient="row",
    )
    audit = pl.DataFrame(
        {"value_id": registry["value_id"], "explanation": payloads, "findings": [[]] * len(payloads), "hypotheses": [None] * len(payloads)},
        schema_overrides={"findings": pl.List(pl.String), "hypotheses": pl.String},
    ).with_columns(pl.lit("published_patient_data").alias("basis"))
    cells = comparison.compare_with_printed(spine, values, registry, audit, "Table 9")
    rendered = tables.comparison_table_html(cells, payloads[0], payloads[1], 1)

    parsed = _Markup()
    parsed.feed(rendered)
    assert parsed.tags <= {"div", "style", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "span", "a"}, parsed.tags
    assert not {a for a in parsed.attributes if a.startswith("on") or a in ("src", "srcset", "formaction")}, parsed.attributes
    # Every link is a printed value's trace, its value id escaped into the fragment; great_tables' style fetches nothing.
    assert parsed.links and all(link.startswith("trace.html#T9.") for link in parsed.links)
    assert parsed.style and not re.search(r"(?i)@import|url\(|https?://|@font-face", "".join(parsed.style))
    shown = "".join(parsed.text)
    for payload in payloads:
        assert render.clip(payload, markup.REPORT_CELL_CHARS).strip() in shown, payload
