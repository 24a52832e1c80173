"""Table 4 from hand-made cohorts: worst grade per patient and term, denominators, order and the safety figures."""

import polars as pl

from lms_assets.adam.adae import derive_adae
from lms_assets.tables import toxicity
from lms_assets_tests.conftest import SHIPPED_STUDY


def _adae(*events: tuple[int, str, int]) -> pl.DataFrame:
    """ADAE from raw (patient, term, grade) episodes, through the cohort's own worst-grade derivation."""
    raw = pl.DataFrame(
        {
            "patient_id": [e[0] for e in events],
            "term": [e[1] for e in events],
            "episode": list(range(1, len(events) + 1)),
            "ctcae_grade": [e[2] for e in events],
        },
        schema={"patient_id": pl.Int64, "term": pl.String, "episode": pl.Int64, "ctcae_grade": pl.Int64},
    )
    return derive_adae(raw, studyid=SHIPPED_STUDY.studyid)


def _adsl(patients: int, reduced: set[int] = frozenset(), discontinued: set[int] = frozenset()) -> pl.DataFrame:
    ids = list(range(1, patients + 1))
    return pl.DataFrame(
        {
            "SUBJID": ids,
            "DOSREDFL": ["Y" if i in reduced else "N" for i in ids],
            "DISCAEFL": ["Y" if i in discontinued else "N" for i in ids],
        }
    )


# Patient 1 had hand-foot skin syndrome at grade 1, then 3, then 2: counted once, at grade 3.
EVENTS = (
    (1, "Hand foot skin syndrome", 1),
    (1, "Hand foot skin syndrome", 3),
    (1, "Hand foot skin syndrome", 2),
    (2, "Hand foot skin syndrome", 2),
    (2, "Fatigue", 1),
    (3, "Fatigue", 2),
    (3, "Nausea/vomiting", 4),
    (4, "Anemia", 5),
    (4, "Anemia", 2),
)
# Eight patients in ADSL, four of them without any event.
TABLE = toxicity.adverse_event_summary(_adae(*EVENTS), _adsl(8, reduced={1, 3}, discontinued={3}))


def _row(term: str) -> dict:
    return TABLE.filter(pl.col("term") == term).row(0, named=True)


def _figure(quantity: str) -> float:
    figs = toxicity.figures(TABLE)
    return figs.filter(pl.col("quantity") == quantity)["value"].item()


def test_a_patient_is_counted_once_per_term_at_the_worst_grade():
    hfs = _row("Hand foot skin syndrome")
    assert (hfs["total_n"], hfs["g12_n"], hfs["g34_n"]) == (2, 1, 1)
    assert (hfs["patients"], hfs["patients_g12"], hfs["patients_g34"]) == ([1, 2], [2], [1])


def test_percentages_are_of_all_patients_not_only_those_with_events():
    hfs = _row("Hand foot skin syndrome")
    assert (hfs["denominator"], hfs["total_pct"], hfs["g34_pct"]) == (8, 25.0, 12.5)


def test_terms_most_frequent_first_ties_by_grade_3_4_then_name():
    terms = TABLE.filter(pl.col("section") == toxicity.TERM)["term"].to_list()
    # Hand-foot and fatigue both have 2 patients; hand-foot has a grade 3/4. Anemia and nausea have 1; nausea is grade 4.
    assert terms == ["Hand foot skin syndrome", "Fatigue", "Nausea/vomiting", "Anemia"]
    assert TABLE["section"].to_list()[0] == toxicity.ANY_EVENT
    assert TABLE["section"].to_list()[-2:] == [toxicity.ACTION, toxicity.ACTION]


def test_any_event_row_uses_each_patients_worst_grade_over_all_terms():
    any_event = _row(toxicity.ANY_EVENT)
    assert (any_event["total_n"], any_event["patients_g12"], any_event["patients_g34"], any_event["patients_g5"]) == (4, [2], [1, 3], [4])


def test_safety_figures():
    assert _figure("ae.hand_foot_skin_syndrome.any.n") == 2
    assert _figure("ae.hand_foot_skin_syndrome.g34.pct") == 12.5
    assert _figure("ae.nausea_vomiting.g34.n") == 1
    assert _figure("ae.fatigue.g34.n") == 0  # an empty grade group is a printed 0, not a missing figure
    assert _figure("ae.any_g34.n") == 3  # grade ≥ 3: two at grade 3/4 and one at grade 5
    assert _figure("ae.any_g34.pct") == 37.5
    assert _figure("treatment_related_deaths.n") == 1
    assert _figure("dose_reduction.n") == 2 and _figure("dose_reduction.pct") == 25.0
    assert _figure("discontinuation.pct") == 12.5


def test_no_events_still_gives_the_summary_rows():
    table = toxicity.adverse_event_summary(_adae(), _adsl(3))
    assert table["section"].to_list() == [toxicity.ANY_EVENT, toxicity.ACTION, toxicity.ACTION]
    figs = toxicity.figures(table)
    assert figs.filter(pl.col("quantity") == "ae.any_g34.n")["value"].item() == 0
    assert figs.filter(pl.col("quantity") == "treatment_related_deaths.n")["value"].item() == 0
