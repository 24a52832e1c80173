"""The printed-value check: every value the paper prints, judged on the value its summary table shows.

One value from its row to its check, Table 2's ORR (``T2.orr.pct``):

1. ``printed_values.csv`` prints it (``source`` Table 2, ``quantity`` orr.pct, ``decimals``); ``printed_values_table``
   types the registry once and adds its reviewed entry (``known_discrepancies.csv``), its ``owner`` and its
   ``check_name``.
2. Its owner is the summary table whose module declares the quantity's prefix next to the function reading it
   from the table's cells (``tables.response.TABLE_2``: ``response_summary`` owns ``orr.``, read by
   ``response.recomputed_values``); ``OWNERS`` collects those declarations, so a new table is declared in its module.
3. ``value_verdict`` takes the value that table shows and ``judge`` sets it against the printing at the printed
   precision (``compare``): passed, WARN (a reviewed discrepancy that still stands) or ERROR. ``printed_audit`` and
   the report give the same verdict through ``judge``.
4. ``section_verdicts`` groups one table's verdicts by the part of the paper that prints them (``SectionVerdict``),
   one blocking check each; ``lms_assets.defs.printed_checks`` declares and reports them in Dagster, and the gate
   publishes the table only when none fails at ERROR.

The checks of the shipped study, named by ``check_name`` from each value's ``source``: printed_abstract,
printed_discussion, printed_methods_patient_characteristics, printed_results_efficacy,
printed_results_patient_characteristics, printed_results_safety_and_toxicity, printed_table_1, printed_table_2,
printed_table_4.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
import re
from collections.abc import Mapping, Sequence
from types import ModuleType

import polars as pl

from lms_assets import tables
from lms_assets.records import errors, schemas, validation
from lms_assets.tables.printed import PrintedQuantities, RecomputedValues, format_value, published_cut

# The comparison at printed precision.
AGREES, DIFFERS, ABSENT = "agrees", "differs", "absent"
# Comparisons at a rounding boundary (31.75 printed as 31.7) must not depend on binary noise.
_EPSILON = 1e-9


def half_unit(decimals: int) -> float:
    """Half the last printed digit: a value within it of a printed one rounds to that printing."""
    return 0.5 * 10 ** (-decimals)


def compare(printed: float, decimals: int, displayed: float | None) -> str:
    """The one comparison of a printed value with the value a summary table shows: agrees, differs, or absent (nothing shown).

    Agrees when the shown value rounds to the printed one at the printed precision (a tie may round either way).
    Every consumer (the printed-value checks, ``printed_audit``, the report) decides through this function.
    """
    if displayed is None or math.isnan(displayed):
        return ABSENT
    return AGREES if abs(displayed - printed) <= half_unit(decimals) + _EPSILON else DIFFERS


def agrees(printed: float, decimals: int, recomputed: float | None) -> bool:
    """Printed precision: the recomputed value rounds to the printed one (see ``compare``)."""
    return compare(printed, decimals, recomputed) == AGREES


def _declared(*modules: ModuleType) -> tuple[PrintedQuantities, ...]:
    """The ``PrintedQuantities`` the modules hold, each once (a module may import another's)."""
    return tuple(dict.fromkeys(v for m in modules for v in vars(m).values() if isinstance(v, PrintedQuantities)))


# Who computes which printed quantities: each module of ``tables`` declares those it owns (``PrintedQuantities``), so
# a new summary table needs no line here.
OWNERS = _declared(*(importlib.import_module(f"{tables.__name__}.{m.name}") for m in pkgutil.iter_modules(tables.__path__)))
# Each owner's ``recomputed_values``, by asset name: the cells ``printed_audit``, the checks and the ARD read.
PRINTED_VALUE_SOURCES: dict[str, RecomputedValues] = {o.table: o.recomputed_values for o in OWNERS}


def owner_of(quantity: str) -> str | None:
    """The asset that computes a printed quantity, or None when no asset does."""
    return next((o.table for o in OWNERS if quantity.startswith(o.prefixes)), None)


def check_name(source: str) -> str:
    """The Dagster-safe name of the check of a printed section (``Table 1`` → ``printed_table_1``)."""
    return "printed_" + (re.sub(r"[^a-z0-9]+", "_", source.lower()).strip("_") or "unnamed")


def owned_rows(asset_name: str, registry: pl.DataFrame) -> pl.DataFrame:
    """The registry rows ``asset_name`` computes."""
    return registry.filter(pl.col("quantity").map_elements(owner_of, return_dtype=pl.String) == asset_name)


# The registry typed once. The reviewed-discrepancy columns it carries (null where the value is not reviewed):
REVIEW_SCHEMA = pl.Schema(
    {
        "reviewed_expected": pl.String,
        "reviewed_finding": pl.String,
        "reviewed_reason": pl.String,
        "reviewed_by": pl.String,
        "reviewed_on": pl.Date,
    }
)


def typed_registry(raw: pl.DataFrame) -> pl.DataFrame:
    """The registry with its declared types; rows that break the schema are left out (and quarantined upstream)."""
    return validation.clean(raw, schemas.REGISTRY, validation.problems(raw, schemas.REGISTRY))


def with_reviews(registry: pl.DataFrame, known: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The registry with each value's reviewed-discrepancy entry (``REVIEW_SCHEMA``), and the entries naming no printed value."""
    reviews = known.select(
        "value_id",
        pl.col("expected_recomputed").alias("reviewed_expected"),
        pl.col("finding").alias("reviewed_finding"),
        pl.col("reason").alias("reviewed_reason"),
        "reviewed_by",
        "reviewed_on",
    ).cast(pl.Schema([("value_id", pl.String), *REVIEW_SCHEMA.items()]))
    orphans = sorted(set(reviews["value_id"].to_list()) - set(registry["value_id"].to_list()))
    return registry.join(reviews, on="value_id", how="left"), orphans


def printed_values_table(raw_registry: pl.DataFrame, raw_known: pl.DataFrame) -> pl.DataFrame:
    """The registry typed once, with each value's owner asset, the name of its section's check, the published cut and its reviewed entry.

    Raises ``errors.RecordFileError`` naming file, row and column when the reviewed list is malformed, or
    names a value that is not printed: a review that cannot be applied must not silently turn into an ERROR.
    """
    registry = typed_registry(raw_registry)
    problems = validation.problems(raw_known, schemas.KNOWN_DISCREPANCIES)
    if problems.height:
        first = "; ".join(f"row {r['row']} column {r['column']}: {r['reason']}" for r in problems.head(5).iter_rows(named=True))
        raise errors.RecordFileError(f"{schemas.KNOWN_DISCREPANCIES.location}: {problems.height} problem(s): {first}")
    known = validation.clean(raw_known, schemas.KNOWN_DISCREPANCIES, problems)
    reviewed, orphans = with_reviews(registry, known)
    if orphans:
        raise errors.RecordFileError(f"{schemas.KNOWN_DISCREPANCIES.location}: value_id {', '.join(orphans)} not in printed_values.csv")
    cut = published_cut(registry)
    return reviewed.with_columns(
        pl.col("quantity").map_elements(owner_of, return_dtype=pl.String).alias("owner"),
        pl.col("source").map_elements(check_name, return_dtype=pl.String).alias("check_name"),
        pl.lit(cut, dtype=pl.Date).alias("published_cut"),
    ).drop(validation.FILE, validation.ROW)


# The verdict rule. What a value rests on (``paper_consistency``'s ``basis``):
PUBLISHED, RECONSTRUCTED = "published_patient_data", "reconstructed_inputs"
# The audit's status of a value, and its check's outcome.
REPRODUCED, DISCREPANCY, NOT_RECOMPUTABLE = "reproduced", "discrepancy", "not_recomputable"
PASSED, WARN, ERROR = "passed", "WARN", "ERROR"


def basis_words(basis: str, reconstruction: str | None = None) -> str:
    """The basis as a reader says it: Table 3's published rows, or the reconstructed inputs it names."""
    if basis == PUBLISHED:
        return "Table 3's published rows"
    return f"reconstructed inputs ({reconstruction})" if reconstruction else "reconstructed inputs"


def status_of(comparison: str, findings: Sequence[str]) -> str:
    """The audit status: reproduced only when the shown value agrees and the paper does not contradict the printing.

    A printing the paper contradicts (87.5% printed as 16/19) is a discrepancy whether or not the data can recompute it.
    """
    if findings:
        return DISCREPANCY
    return {AGREES: REPRODUCED, DIFFERS: DISCREPANCY, ABSENT: NOT_RECOMPUTABLE}[comparison]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One printed value judged against the value its summary table shows."""

    status: str  # reproduced / discrepancy / not_recomputable (printed_audit and the report)
    check: str  # the printed-value check: passed, or failed at WARN or ERROR
    shown: str  # the shown value at the printed precision plus one digit
    explanation: str  # printed_audit's sentence; the reason a WARN check gives
    check_reason: str  # why the check passed, warned or stopped the run (its first metadata entry)


def _explanation(row: dict, comparison: str, shown: str, consistency: dict) -> str:
    paper_says = consistency["explanation"]
    basis = basis_words(consistency["basis"])
    if comparison == ABSENT:
        parts = ["The study's records hold nothing from which this value can be recomputed"]
    elif comparison == AGREES and not consistency["findings"]:
        return (
            ""
            if consistency["basis"] == PUBLISHED
            else ("Reproduced from reconstructed inputs: this shows the pipeline's arithmetic, not that the paper is right")
        )
    elif comparison == AGREES:
        parts = [f"{basis[0].upper() + basis[1:]} give {shown}, which agrees with this printing, but the paper contradicts it elsewhere"]
    else:
        parts = [f"{row['source']} prints {row['printed']!r} ({row['value']:g}) but {basis} give {shown}"]
    if paper_says:
        parts.append(paper_says)
    if row.get("reviewed_reason"):
        parts.append(f"reviewed: {row['reviewed_reason']}")
    return "; ".join(parts)


def _same_shown(expected: str, shown: str, decimals: int) -> bool:
    """The reviewed value and the shown one at the printed precision plus one digit ("52" as a spreadsheet saves it is 52.0)."""
    try:
        return format_value(float(expected), decimals) == shown
    except ValueError:
        return expected.strip() == shown


def judge(row: dict, displayed: float | None, consistency: dict) -> Verdict:
    """The verdict on one printed value, from the value its summary table shows; the checks, printed_audit and the report all use it.

    ``row`` is a row of the typed registry (``printed_values``, with ``REVIEW_SCHEMA``), ``consistency`` its
    ``paper_consistency`` row. The check passes when the shown value agrees at the printed precision and no reviewed
    discrepancy says it should not. A failure is WARN only when the value is a reviewed discrepancy that still
    stands: the shown value is the reviewed ``expected_recomputed`` and its reviewed finding is still found. Any
    other failure is ERROR — a shown value that differs unreviewed, a reviewed one that moved, and a reviewed
    discrepancy that is suddenly reproduced (the review is stale and must be removed).
    """
    comparison = compare(row["value"], row["decimals"], displayed)
    shown = format_value(displayed, row["decimals"])
    status = status_of(comparison, consistency["findings"])
    explanation = _explanation(row, comparison, shown, consistency)
    expected = row.get("reviewed_expected")
    reviewed = expected is not None
    printed = f"{row['source']} prints {row['printed']!r} ({row['value']:g})"
    if comparison == AGREES:
        if not reviewed:
            return Verdict(status, PASSED, shown, explanation, f"reproduced: the table shows {shown}; {printed}")
        reason = (
            f"stale review: the reviewed discrepancy no longer stands — the table now shows {shown}, which reproduces "
            f"the printing (reviewed as {expected}); a changed derivation or input did this: find out why, then "
            "remove the entry from known_discrepancies.csv"
        )
        return Verdict(status, ERROR, shown, explanation, reason)
    if expected is None:
        reason = (
            f"regression or unreviewed discrepancy: {printed} but the table shows {shown}, and the value is not a "
            "reviewed discrepancy in known_discrepancies.csv"
        )
    elif not _same_shown(expected, shown, row["decimals"]):
        reason = f"the reviewed discrepancy moved: the table showed {expected} when reviewed and now shows {shown}; {printed}"
    elif row.get("reviewed_finding") and row["reviewed_finding"] not in consistency["findings"]:
        reason = (
            f"the reviewed finding {row['reviewed_finding']} is no longer found by paper_consistency "
            f"(now: {', '.join(consistency['findings']) or 'none'}); the review no longer explains the failure"
        )
    else:
        return Verdict(status, WARN, shown, explanation, explanation)
    paper_says = consistency["explanation"]
    return Verdict(status, ERROR, shown, explanation, f"{reason}; the paper: {paper_says}" if paper_says else reason)


# The severity rule, said in every section check's description and in README "How the checks decide".
RULE = (
    "Blocking: ERROR on any unreviewed difference, a reviewed one whose value moved, or a reviewed one now reproduced "
    "(the review is stale); WARN when every difference is a reviewed discrepancy in known_discrepancies.csv."
)

# The columns of a section check's `values` table, in order: few and short, so the check panel shows them whole at
# 1440 px. Why a value differs is given in numbered `reason` entries, each clause once however many values share it.
VALUE_COLUMNS = (
    ("printed_value", "registry id (printed_values.csv)"),
    ("verdict", "passed, WARN or ERROR"),
    ("printed", "what the paper prints"),
    ("shown", "the table's value at the printed precision plus one digit"),
    ("basis", "Table 3's rows, or reconstructed inputs"),
    ("reasons", "the numbered reasons below that say why it differs"),
)


@dataclasses.dataclass(frozen=True)
class ValueVerdict:
    """One printed value judged (``judge``) on the value its table shows."""

    row: dict
    verdict: Verdict
    paper: dict

    @property
    def id(self) -> str:
        return self.row["value_id"]

    @property
    def outcome(self) -> str:
        """passed, WARN or ERROR."""
        return PASSED if self.verdict.check == PASSED else WARN if self.verdict.check == WARN else ERROR

    @property
    def note(self) -> str:
        """Why a failed value differs, with its review when it has one; empty when it passed."""
        if self.outcome == PASSED:
            return ""
        row = self.row
        reviewed = f" Reviewed by {row['reviewed_by']} on {row['reviewed_on']}." if row.get("reviewed_expected") is not None else ""
        return f"{self.verdict.check_reason}{reviewed}"

    def record(self, reasons: str) -> dict[str, str]:
        """The value's row of its check's ``values`` table (``VALUE_COLUMNS``), every cell text."""
        return {
            "printed_value": self.id,
            "verdict": self.outcome,
            "printed": self.row["printed"],
            "shown": self.verdict.shown,
            "basis": "reconstructed" if self.paper["basis"] == RECONSTRUCTED else "Table 3",
            "reasons": reasons,
        }


def value_verdict(row: dict, values: pl.DataFrame, paper: dict) -> ValueVerdict:
    """The verdict on one registry row: ``judge`` on the value ``values`` (a table's ``recomputed_values``) shows for its quantity."""
    match = values.filter(pl.col("quantity") == row["quantity"])
    shown = match["value"][0] if match.height else None
    return ValueVerdict(row, judge(row, shown, paper), paper)


@dataclasses.dataclass(frozen=True)
class SectionVerdict:
    """One section's check on one table: the verdict on each of its printed values, and what the check says.

    ERROR when any value failed at ERROR, WARN when every failed value is a reviewed discrepancy (a check that passed
    carries ERROR, the severity it blocks at).
    """

    name: str
    verdicts: tuple[ValueVerdict, ...]

    @property
    def failed(self) -> list[ValueVerdict]:
        return [v for v in self.verdicts if v.outcome != PASSED]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def severity(self) -> str:
        return ERROR if self.passed or any(v.outcome == ERROR for v in self.failed) else WARN

    def summary(self) -> str:
        """The check's first line: which values failed, and why the first did (its first reason); empty when it passed."""
        failed = self.failed
        if not failed:
            return ""
        unreviewed = [v.id for v in failed if v.outcome == ERROR]
        warned = [v.id for v in failed if v.outcome != ERROR]
        parts = [
            f"{len(unreviewed)} unreviewed (ERROR): {', '.join(unreviewed)}" if unreviewed else "",
            f"{len(warned)} reviewed discrepancies (WARN): {', '.join(warned)}" if warned else "",
        ]
        # ERROR values first (a stable sort keeps registry order within each): they are what stops publication.
        first = sorted(failed, key=lambda v: v.outcome != ERROR)[0]
        return (
            f"{len(failed)} of {len(self.verdicts)} printed values differ from the paper; "
            + "; ".join(p for p in parts if p)
            + f". First, {first.id}: {first.note.split('; ')[0]}"
        )

    def reasons(self) -> tuple[dict[str, int], list[dict[str, str]]]:
        """Each distinct reason clause with its number (a clause several values share is given once), and the check's
        ``values`` table: one record per value citing its reasons by number."""
        numbers: dict[str, int] = {}
        cited = {v.id: [numbers.setdefault(clause, len(numbers) + 1) for clause in v.note.split("; ")] for v in self.failed}
        return numbers, [v.record(", ".join(map(str, cited.get(v.id, [])))) for v in self.verdicts]


def section_verdicts(
    asset_name: str,
    table: pl.DataFrame,
    printed_values: pl.DataFrame,
    paper_consistency: pl.DataFrame,
    selected: set[str] | None = None,
) -> list[SectionVerdict]:
    """``asset_name``'s section checks (those in ``selected``, or all) judged on ``table``, its candidate.

    ``printed_values`` is the typed registry (``printed_values_table``), ``paper_consistency`` its findings and basis.
    """
    paper: Mapping[str, dict] = {r["value_id"]: r for r in paper_consistency.iter_rows(named=True)}
    values = PRINTED_VALUE_SOURCES[asset_name](table, published_cut(printed_values))
    sections: dict[str, list[ValueVerdict]] = {}
    for row in printed_values.iter_rows(named=True):
        if row["owner"] != asset_name or (selected is not None and row["check_name"] not in selected):
            continue
        sections.setdefault(row["check_name"], []).append(value_verdict(row, values, paper[row["value_id"]]))
    return [SectionVerdict(name, tuple(verdicts)) for name, verdicts in sections.items()]
