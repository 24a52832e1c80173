"""The data dictionary: one description per column of every warehouse table, the text Dagster's column schema
shows and data/README.md prints ("Tables in the warehouse").

Raw tables take their column descriptions from the record schemas (``lms_assets/records/schemas.py``), the one
place a record file's columns are declared; ADaM, summary and audit tables from ``columns.DERIVED``. Plain text
throughout: the UI shows descriptions as they are, so markup (backticks) would show as such.

An ADaM variable's label, origin (Collected, Derived, Assigned, Reconstructed, Not Available) and derivation are
declared beside the derivations (``lms_assets.adam.variables``); ``adam_variables`` gives them with the
description, per dataset, as the standard exports' metadata lists them.
"""

from __future__ import annotations

import re

from lms_assets.adam import variables
from lms_assets.columns import DERIVED
from lms_assets.records import schemas

# Added by the ingest to every raw table.
RAW_EXTRAS = {
    "_file": "Record file the row was read from",
    "_row": "Line of the record file (the header is line 1)",
    "content_hash": "SHA-256 of the record file's content (for follow-up, of that cut's file)",
    "data_cut": "Data cut, from the file name (its ISO date)",
}


def _raw_tables() -> dict[str, dict[str, str]]:
    tables = {}
    for schema in (v for v in vars(schemas).values() if isinstance(v, schemas.FileSchema)):
        columns = {c.name: c.description for c in schema.columns}
        # Every raw table carries its file's hash (the report's provenance reads it); follow-up also its cut.
        extras = ("data_cut", "content_hash") if schema is schemas.FOLLOWUP else ("content_hash",)
        tables[f"raw_{schema.name}"] = {**columns, "_file": RAW_EXTRAS["_file"], "_row": RAW_EXTRAS["_row"], **{e: RAW_EXTRAS[e] for e in extras}}
    return tables


RAW: dict[str, dict[str, str]] = _raw_tables()


def description(table: str, column: str) -> str | None:
    """The column's description, or None when the dictionary does not know the table or the column."""
    return {**RAW, **DERIVED}.get(table, {}).get(column)


def adam_variables(table: str) -> list[dict[str, str | None]]:
    """Each variable of the ADaM dataset ``table`` in order: name, label, description, origin and derivation (its rule,
    or the record file and column it comes from, with the description where that is all a rule would say)."""
    rows = []
    for name, text in DERIVED[table].items():
        rule = variables.derivation(table, name)
        if rule is None:
            rule = text
        elif variables.origin(table, name) == "Derived" and (table, name) in variables.RECORD_SOURCES:
            rule = f"{rule}: {text}"
        rows.append({"name": name, "label": variables.LABELS[name], "description": text, "origin": variables.origin(table, name), "derivation": rule})
    return rows


def _markdown(text: str) -> str:
    """``text`` shown as itself in a markdown table: "<where printed>" would be taken for an HTML tag and hidden."""
    return re.sub(r"([\\<>|*_`\[\]])", r"\\\1", text)


README_START = "<!-- data dictionary: generated from lms_assets/dictionary.py, do not edit by hand -->"
README_END = "<!-- end of data dictionary -->"


def readme_section() -> str:
    """Every table's columns as data/README.md prints them, between ``README_START`` and ``README_END``
    (``python -m lms_assets.dictionary`` prints it)."""
    lines = [README_START]
    for table, columns in {**RAW, **DERIVED}.items():
        lines += ["", f"#### {table}", "| column | meaning |", "|---|---|"]
        lines += [f"| {_markdown(name)} | {_markdown(text)} |" for name, text in columns.items()]
    return "\n".join([*lines, "", README_END])


if __name__ == "__main__":
    print(readme_section())
