"""The trace page: for every printed value, where the paper prints it, what the platform recomputed and by which
rule, every ADaM row it counts (with ``SRCFILE`` and ``SRCROW``) and the raw record lines those rows came from, with
each file's SHA-256. A check's ``trace <id>`` link and the report's printed cells open a value's section (``#<id>``).

Pure: every input is passed in as a frame. A trace lists at most ``TRACE_ROWS`` rows; the rest are in the warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping

import polars as pl

from lms_assets.checks.printed_values import basis_words
from lms_assets.report.markup import STYLE, cut_words, table_html, text_html

TRACE_FILE = "trace.html"
TRACE_ROWS = 500
RAW_META = ("_file", "_row", "content_hash", "data_cut")
# The ADaM columns a trace shows, key columns first; SRCFILE and SRCROW lead to the raw line.
ADAM_COLUMNS = {
    "adtte": ["SUBJID", "PARAMCD", "DCUTDT", "AVAL", "CNSR", "EVNTDESC", "SRCFILE", "SRCROW"],
    "adrs": ["SUBJID", "PARAMCD", "AVALC", "SRCFILE", "SRCROW"],
    "adtr": ["SUBJID", "PARAMCD", "AVISIT", "PCHG", "SRCFILE", "SRCROW"],
    "adae": ["SUBJID", "ASEQ", "AEDECOD", "ATOXGR", "ATOXGRGP", "SRCFILE", "SRCROW"],
    "adsl": ["SUBJID", "AGE", "SEX", "ECOG", "PRIMSITE", "COMBTRT", "DOSE0", "DOSREDFL", "DISCAEFL"],
}
# ADSL merges two record files, so its rows name no single source line: its trace shows both files' lines.
ADSL_SOURCES = ("raw_patients", "raw_allocations")


def dataset_of(owner: str, quantity: str) -> str:
    """The ADaM dataset whose rows the summary ``owner`` counts for ``quantity``."""
    if owner.startswith("survival_"):
        return "adtte"
    if owner == "tumour_shrinkage" and quantity.startswith("shrinkage"):
        return "adtr"
    if owner in ("response_summary", "tumour_shrinkage"):
        return "adrs"
    if owner == "ae_summary" and quantity.startswith("ae."):
        return "adae"
    return "adsl"


def _ae_term(quantity: str, ae_summary: pl.DataFrame) -> str | None:
    """The adverse-event term a Table 4 quantity counts (``ae.hypertension.g12.n`` → Hypertension); None for any event."""
    keys = [k for k in ae_summary["key"].to_list() if quantity.startswith(f"{k}.")]
    if not keys:
        return None
    key = max(keys, key=len)
    term = ae_summary.filter(pl.col("key") == key)["term"][0]
    return None if key == "ae.any" else term


def counted_rows(row: Mapping, datasets: Mapping[str, pl.DataFrame], ae_summary: pl.DataFrame, cut: dt.date | None) -> tuple[str, str, pl.DataFrame]:
    """The ADaM dataset, the filter in words and the rows that ``row`` (a ``printed_audit`` row) counts."""
    name = dataset_of(row["computed_by"] or "", row["quantity"])
    frame = datasets[name].filter(pl.col("SUBJID").is_in(list(row["patients"] or [])))
    words = [f"the {len(row['patients'] or [])} patients the value rests on"]
    if name == "adtte":
        paramcd = "PFS" if ".pfs." in f".{row['quantity']}" else "OS"
        frame = frame.filter(pl.col("PARAMCD") == paramcd)
        words.append(f"PARAMCD = {paramcd}")
        if cut is not None:
            frame = frame.filter(pl.col("DCUTDT") == cut)
            words.append(f"DCUTDT = {cut}")
    elif name == "adae" and (term := _ae_term(row["quantity"], ae_summary)) is not None:
        frame = frame.filter(pl.col("AEDECOD") == term)
        words.append(f"AEDECOD = {term}")
    return name, ", ".join(words), frame.select([c for c in ADAM_COLUMNS[name] if c in frame.columns]).sort("SUBJID")


def _line(values: list) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["" if v is None else v for v in values])
    return out.getvalue()


def raw_lines(dataset: str, counted: pl.DataFrame, raw_tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """The raw record lines behind ``counted``: each file, its SHA-256 as ingested, the line number and the line."""
    frames = []
    for name, raw in raw_tables.items():
        if raw.is_empty():
            continue
        if dataset == "adsl":
            if name not in ADSL_SOURCES:
                continue
            hit = raw.filter(pl.col("patient_id").cast(pl.Int64, strict=False).is_in(counted["SUBJID"].to_list()))
        else:
            keys = counted.select(pl.col("SRCFILE").alias("_file"), pl.col("SRCROW").cast(pl.Int64).alias("_row"))
            hit = raw.join(keys, on=["_file", "_row"], how="semi")
        if hit.is_empty():
            continue
        columns = [c for c in raw.columns if c not in RAW_META]
        frames.append(
            pl.DataFrame(
                {
                    "file": hit["_file"],
                    "sha256": hit["content_hash"],
                    "line": hit["_row"],
                    "text": [_line(list(r)) for r in hit.select(columns).iter_rows()],
                    "header": _line(columns),
                }
            )
        )
    if not frames:
        return pl.DataFrame(schema={"file": pl.String, "sha256": pl.String, "line": pl.Int64, "text": pl.String, "header": pl.String})
    return pl.concat(frames).sort("file", "line")


def _raw_html(lines: pl.DataFrame) -> str:
    parts = []
    for (file, sha, header), group in lines.group_by("file", "sha256", "header", maintain_order=True):
        shown = group.head(TRACE_ROWS)
        text = "\n".join([f"   1  {header}", *(f"{n:>4}  {t}" for n, t in shown.select("line", "text").iter_rows())])
        more = f"\n… {group.height - TRACE_ROWS} more lines" if group.height > TRACE_ROWS else ""
        parts.append(
            f'<p class="file"><strong>{text_html(file)}</strong> — SHA-256 <code>{text_html(sha)}</code></p><pre>{text_html(text + more)}</pre>'
        )
    return "".join(parts) or "<p>No raw lines: the value rests on no record rows.</p>"


def trace_section(
    row: Mapping,
    registry_row: Mapping,
    datasets: Mapping[str, pl.DataFrame],
    ae_summary: pl.DataFrame,
    raw_tables: Mapping[str, pl.DataFrame],
    cut: dt.date | None,
) -> str:
    """One printed value's trace (``row`` its ``printed_audit`` row, ``registry_row`` its ``printed_values`` row)."""
    name, words, counted = counted_rows(row, datasets, ae_summary, cut)
    decimals = registry_row["decimals"]
    owner = registry_row["owner"] or "no asset"
    recomputed = (
        f"{row['shown']} by {row['computed_by']}, compared at {decimals} decimal place(s), halves rounded up"
        if row["computed_by"]
        else f"{row['shown']}: no table computes it"
    )
    facts = [
        ("Printed", f"{row['published']} — {row['source']}"),
        ("Recomputed", recomputed),
        ("Verdict", f"{row['status']}; check {registry_row['check_name']} on {owner}: {row['check_outcome']}"),
        ("Why", row["check_reason"] or ""),
        ("Rests on", basis_words(row["basis"])),
    ]
    facts_html = "".join(f"<dt>{text_html(k)}</dt><dd>{text_html(v)}</dd>" for k, v in facts if v)
    shown = counted.head(TRACE_ROWS)
    rows_html = table_html(shown, f"{counted.height} {name.upper()} rows counted: {words}")
    # The raw lines of the rows shown only: a large study's value can count millions of rows, and each would be a
    # join against its whole raw table.
    of_shown = f" (of the first {TRACE_ROWS} rows)" if counted.height > TRACE_ROWS else ""
    return (
        f'<section id="{text_html(row["value_id"])}"><h2>{text_html(row["value_id"])}</h2><dl class="summary">{facts_html}</dl>'
        f"{rows_html}<h3>Raw record lines{of_shown}</h3>{_raw_html(raw_lines(name, shown, raw_tables))}</section>"
    )


TRACE_STYLE = "pre { font-size: .8rem; background: #f6f8fa; padding: .5rem; overflow-x: auto; } p.file { margin: .4rem 0 0; font-size: .85rem; }"


def trace_page_html(
    title: str,
    audit: pl.DataFrame,
    registry: pl.DataFrame,
    datasets: Mapping[str, pl.DataFrame],
    ae_summary: pl.DataFrame,
    raw_tables: Mapping[str, pl.DataFrame],
    cut: dt.date | None,
) -> str:
    """The whole trace page: one section per printed value of ``audit`` (``printed_audit``), in the registry's order."""
    by_id = {r["value_id"]: r for r in registry.iter_rows(named=True)}
    sections = "".join(trace_section(r, by_id[r["value_id"]], datasets, ae_summary, raw_tables, cut) for r in audit.iter_rows(named=True))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{text_html(title)}: traces</title><style>{STYLE}{TRACE_STYLE}</style></head>"
        f"<body><h1>{text_html(title)}: where each printed value comes from</h1><p>Every printed value at {text_html(cut_words([cut]))}: "
        "the ADaM rows it counts and the raw record lines they were derived from. "
        '<a href="study_report.html">Back to the study report</a>.</p>'
        f"{sections}</body></html>"
    )
