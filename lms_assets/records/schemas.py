"""Declared schemas of the study's record files: columns, types, categories, ranges and keys.

The same declarations drive validation, quarantine messages and the documentation in data/README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import polars as pl

YES_NO = ("Yes", "No")


@dataclass(frozen=True)
class Column:
    """One declared column of a record file."""

    name: str
    dtype: type[pl.DataType]
    description: str
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class RowRule:
    """A rule across columns of one row; ``violated`` is a Polars expression on the typed row."""

    column: str
    violated: pl.Expr
    reason: str


@dataclass(frozen=True)
class FileSchema:
    """A record file (or a folder of files of one shape) and what every row must satisfy."""

    name: str
    location: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str
    row_rules: tuple[RowRule, ...] = field(default=())
    references_patients: bool = True
    # Rows that are valid but worth a second look: reported (a WARN check on the raw table), never quarantined.
    row_flags: tuple[RowRule, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


PATIENT_ID = Column("patient_id", pl.Int64, "Pseudonymous patient number (Table 3 row)", minimum=1)

PATIENTS = FileSchema(
    name="patients",
    location="patients.csv",
    description="One row per patient: Table 3's baseline and treatment columns.",
    key=("patient_id",),
    references_patients=False,
    columns=(
        PATIENT_ID,
        Column("age", pl.Int64, "Age at start of the study treatment, years", minimum=18, maximum=100),
        Column("sex", pl.String, "Sex as printed", allowed=("Female", "Male")),
        Column("ecog", pl.Int64, "ECOG performance status", minimum=0, maximum=4),
        Column("surgery_history", pl.String, "Prior surgery", allowed=YES_NO),
        Column("radiotherapy_history", pl.String, "Prior radiotherapy", allowed=YES_NO),
        Column(
            "chemotherapy_history",
            pl.String,
            "Prior chemotherapy lines as printed",
            allowed=("No", "1 line", "2 line", "3 line and more"),
        ),
        # Its values are the study's (study.toml, [vocabulary.patients]); "None" is given alone.
        Column("combination_therapy", pl.String, "Therapy combined with the study treatment"),
    ),
)

PATIENT_ALLOCATIONS = FileSchema(
    name="allocations",
    location="patient_allocations.csv",
    description="Per-patient values the paper prints only as counts, allocated consistently with those counts.",
    key=("patient_id",),
    columns=(
        PATIENT_ID,
        # Its values are the study's (study.toml, [vocabulary.allocations]).
        Column("primary_site", pl.String, "Primary tumour site"),
        Column("starting_dose_mg", pl.Int64, "Starting daily dose of the study treatment, mg", minimum=8, maximum=12),
        Column("dose_reduced", pl.String, "Dose reduced for toxicity", allowed=YES_NO),
        Column("discontinued_for_toxicity", pl.String, "Study treatment stopped for adverse reactions", allowed=YES_NO),
    ),
)

RESPONSE = FileSchema(
    name="response",
    location="response.csv",
    description="One row per patient: best % change of the target-lesion sum and the recorded RECIST 1.1 best response.",
    key=("patient_id",),
    columns=(
        PATIENT_ID,
        Column("best_pct_change", pl.Float64, "Best % change from baseline of the target-lesion sum", minimum=-100, maximum=1000),
        Column("best_response", pl.String, "Recorded RECIST 1.1 best overall response", allowed=("CR", "PR", "SD", "PD", "NE")),
    ),
)

FOLLOWUP = FileSchema(
    name="followup",
    location="followup/YYYY-MM-DD.csv",
    description="One file per data cut, named by its ISO cut date; one row per patient.",
    key=("patient_id",),  # within one cut file
    columns=(
        PATIENT_ID,
        Column("pfs_months", pl.Float64, "Progression-free survival time, months", minimum=0, maximum=600),
        Column("progressed", pl.Int64, "1 = progression or death observed, 0 = censored", minimum=0, maximum=1),
        Column("os_months", pl.Float64, "Overall survival time (death or last contact), months", minimum=0, maximum=600),
        Column("died", pl.Int64, "1 = died, 0 = alive at last contact", minimum=0, maximum=1),
    ),
    # The data dictionary's definitions as rules (data/README.md, followup/): os_months is "≥ pfs_months", and
    # progressed is "1 = progression or death", so a death is always a PFS event (at the death or earlier).
    row_rules=(
        RowRule("os_months", pl.col("os_months") < pl.col("pfs_months"), "OS is shorter than PFS"),
        RowRule(
            "progressed",
            (pl.col("died") == 1) & (pl.col("progressed") == 0),
            "died = 1 but progressed = 0: a death is a PFS event (progressed: 1 = progression or death)",
        ),
    ),
    # A time of 0 is possible (an event or a last contact on the day of the first dose) but is more often a
    # missing time written as 0.
    row_flags=(
        RowRule("pfs_months", pl.col("pfs_months") == 0, "PFS time is 0: an event or last assessment on the day of the first dose?"),
        RowRule("os_months", pl.col("os_months") == 0, "OS time is 0: a death or last contact on the day of the first dose?"),
    ),
)

ADVERSE_EVENTS = FileSchema(
    name="adverse_events",
    location="adverse_events.csv",
    description="One row per patient, event term and episode with its CTCAE 4.03 grade.",
    key=("patient_id", "term", "episode"),
    columns=(
        PATIENT_ID,
        # The study's vocabulary (study.toml, [vocabulary.adverse_events]): a term is free text in the source and
        # reaches charts, the report and the UI, so anything else (a misspelling, markup) is quarantined with the list.
        Column("term", pl.String, "Adverse event term as the paper prints it"),
        Column("episode", pl.Int64, "Episode number of this term for this patient", minimum=1),
        Column("ctcae_grade", pl.Int64, "CTCAE 4.03 grade", minimum=1, maximum=5),
    ),
)

REGISTRY = FileSchema(
    name="printed_values",
    location="printed_values.csv",
    description="Every number the paper prints about the cohort, one row per printing.",
    key=("value_id",),
    references_patients=False,
    columns=(
        Column("value_id", pl.String, "Stable id: <where printed>.<quantity>"),
        Column("source", pl.String, "Where it is printed"),
        Column("quantity", pl.String, "What it measures; printings of one quantity share it"),
        Column("printed", pl.String, "The text as printed"),
        Column("value", pl.Float64, "Numeric value as printed"),
        Column(
            "unit",
            pl.String,
            "patients, percent, years, months, or comparisons (a count of significant tests: 0 is a printed 'no significant difference')",
            allowed=("patients", "percent", "years", "months", "comparisons"),
        ),
        Column("decimals", pl.Int64, "Printed decimal places", minimum=0, maximum=4),
        Column("numerator", pl.Int64, "Printed numerator k of 'k/n', if printed", minimum=0),
        Column("denominator", pl.Int64, "Printed denominator n of 'k/n', if printed", minimum=1),
        Column("data_cut", pl.Date, "Data cut the value refers to (survival values)"),
    ),
)

# The machine findings of ``audit.paper_consistency``: ways the paper contradicts itself about a printed value.
PAPER_FINDINGS = ("grim_impossible", "self_inconsistent", "wrong_denominator", "cross_source_conflict", "unreachable")

KNOWN_DISCREPANCIES = FileSchema(
    name="discrepancies",
    location="known_discrepancies.csv",
    description=(
        "Printed values whose printed-value check is reviewed to fail: the value the summary table shows, "
        "and the finding or reason that explains the difference. Only these fail as WARN."
    ),
    key=("value_id",),
    references_patients=False,
    columns=(
        Column("value_id", pl.String, "Registry id of the printed value (printed_values.csv)"),
        Column(
            "expected_recomputed",
            pl.String,
            "The value the summary table shows, at the printed precision plus one digit, or 'not computable'",
        ),
        Column("finding", pl.String, "The paper_consistency finding that explains it, if a machine finding does", allowed=PAPER_FINDINGS),
        Column("reason", pl.String, "Written reason, when no machine finding explains it (or to add to one)"),
        Column("reviewed_by", pl.String, "Who reviewed the entry"),
        Column("reviewed_on", pl.Date, "When it was reviewed (YYYY-MM-DD)"),
    ),
    row_rules=(
        RowRule(
            "reason",
            (pl.col("finding").fill_null("") == "") & (pl.col("reason").fill_null("") == ""),
            "an entry needs a machine finding or a written reason",
        ),
    ),
)

UNCHECKED_CLAIMS = FileSchema(
    name="unchecked_claims",
    location="unchecked_claims.csv",
    description=(
        "Every number or comparative claim in the paper that has no registry row of its own, with why: covered by "
        "registry rows that imply it, not recomputable from the records, or not about this cohort."
    ),
    key=("claim_id",),
    references_patients=False,
    columns=(
        Column("claim_id", pl.String, "Stable id: <where printed>.<claim>"),
        Column("source", pl.String, "Where it is printed"),
        Column("printed", pl.String, "The words as printed"),
        Column(
            "disposition",
            pl.String,
            "Why it has no registry row of its own",
            allowed=("covered_by_registry", "not_recomputable", "not_about_cohort"),
        ),
        Column("value_ids", pl.String, "Space-separated registry ids that check it, or check the part that can be"),
        Column("reason", pl.String, "Why, in words"),
        Column("reviewed_by", pl.String, "Who reviewed the entry"),
        Column("reviewed_on", pl.Date, "When it was reviewed (YYYY-MM-DD)"),
    ),
)

PROVENANCE = FileSchema(
    name="provenance",
    location="provenance.csv",
    description="Where every value in the study folder came from: transcribed (with its place in the paper) or reconstructed (with its constraint).",
    key=("file", "column", "patient_ids"),
    references_patients=False,
    columns=(
        Column("file", pl.String, "Record file (a folder ends with /)"),
        Column("column", pl.String, "Column, or * for the whole file"),
        Column("patient_ids", pl.String, "Space-separated patient numbers, 'all', or empty"),
        Column("origin", pl.String, "How the values were obtained", allowed=("transcribed", "reconstructed", "synthetic")),
        Column("location", pl.String, "Where in the paper (or how generated)"),
        Column("constraint", pl.String, "For reconstructed values: the constraint they satisfy"),
    ),
)

# Columns that may be empty; every other declared column is required.
OPTIONAL_COLUMNS = {
    ("printed_values", "numerator"),
    ("printed_values", "denominator"),
    ("printed_values", "data_cut"),
    ("discrepancies", "finding"),
    ("discrepancies", "reason"),
    ("unchecked_claims", "value_ids"),
    ("provenance", "patient_ids"),
    ("provenance", "constraint"),
}

RECORD_FILES = (PATIENTS, PATIENT_ALLOCATIONS, RESPONSE, FOLLOWUP, ADVERSE_EVENTS)


def with_vocabulary(schema: FileSchema, allowed: Mapping[str, tuple[str, ...]]) -> FileSchema:
    """``schema`` whose columns named in ``allowed`` allow only those values (a study's vocabulary, study.toml)."""
    if not allowed:
        return schema
    columns = tuple(replace(c, allowed=allowed[c.name]) if c.name in allowed else c for c in schema.columns)
    return replace(schema, columns=columns)
