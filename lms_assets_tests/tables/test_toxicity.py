"""ADAE per event with its worst-grade flags, and Table 4 counted from them: hand-made cohorts and the shipped study."""

import polars as pl

from lms_assets.adam.adae import derive_adae, derive_aoccpifl
from lms_assets.records import schemas, validation
from lms_assets.tables import toxicity
from lms_assets_tests.conftest import SHIPPED_DATA, SHIPPED_STUDY


def raw_adverse_events(*events: tuple[int, str, int, int]) -> pl.DataFrame:
    """Validated adverse_events.csv records from (patient, term, episode, grade), each on its own line from line 2."""
    return pl.DataFrame(
        {
            "patient_id": [e[0] for e in events],
            "term": [e[1] for e in events],
            "episode": [e[2] for e in events],
            "ctcae_grade": [e[3] for e in events],
            "_file": [schemas.ADVERSE_EVENTS.location] * len(events),
            "_row": list(range(2, len(events) + 2)),
        },
        schema={
            "patient_id": pl.Int64,
            "term": pl.String,
            "episode": pl.Int64,
            "ctcae_grade": pl.Int64,
            "_file": pl.String,
            "_row": pl.Int64,
        },
    )


def _adae(*events: tuple[int, str, int, int]) -> pl.DataFrame:
    """ADAE from raw (patient, term, episode, grade) records, through the cohort's own derivation."""
    return derive_adae(raw_adverse_events(*events), studyid=SHIPPED_STUDY.studyid)


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
    (1, "Hand foot skin syndrome", 1, 1),
    (1, "Hand foot skin syndrome", 2, 3),
    (1, "Hand foot skin syndrome", 3, 2),
    (2, "Hand foot skin syndrome", 1, 2),
    (2, "Fatigue", 1, 1),
    (3, "Fatigue", 1, 2),
    (3, "Nausea/vomiting", 1, 4),
    (4, "Anemia", 1, 5),
    (4, "Anemia", 2, 2),
)
# Eight patients in ADSL, four of them without any event.
TABLE = toxicity.ae_summary(_adae(*EVENTS), _adsl(8, reduced={1, 3}, discontinued={3}))


def _row(term: str) -> dict:
    return TABLE.filter(pl.col("term") == term).row(0, named=True)


def _value(quantity: str) -> float:
    computed = toxicity.recomputed_values(TABLE)
    return computed.filter(pl.col("quantity") == quantity)["value"].item()


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


def test_safety_values():
    assert _value("ae.hand_foot_skin_syndrome.any.n") == 2
    assert _value("ae.hand_foot_skin_syndrome.g34.pct") == 12.5
    assert _value("ae.nausea_vomiting.g34.n") == 1
    assert _value("ae.fatigue.g34.n") == 0  # an empty grade group is a printed 0, not a missing value
    assert _value("ae.any_g34.n") == 3  # grade ≥ 3: two at grade 3/4 and one at grade 5
    assert _value("ae.any_g34.pct") == 37.5
    assert _value("treatment_related_deaths.n") == 1
    assert _value("dose_reduction.n") == 2 and _value("dose_reduction.pct") == 25.0
    assert _value("discontinuation.pct") == 12.5


def test_no_events_still_gives_the_summary_rows():
    table = toxicity.ae_summary(_adae(), _adsl(3))
    assert table["section"].to_list() == [toxicity.ANY_EVENT, toxicity.ACTION, toxicity.ACTION]
    computed = toxicity.recomputed_values(table)
    assert computed.filter(pl.col("quantity") == "ae.any_g34.n")["value"].item() == 0
    assert computed.filter(pl.col("quantity") == "treatment_related_deaths.n")["value"].item() == 0


# --- ADAE: one row per event, one flag per patient and term ---------------------------------------------------------


def _flagged(adae: pl.DataFrame, flag: str) -> pl.DataFrame:
    return adae.filter(pl.col(flag) == "Y")


def test_one_row_per_event_with_its_raw_line():
    adae = _adae(*EVENTS)
    assert adae.height == len(EVENTS)
    assert adae.select("SUBJID", "AEDECOD", "AEEPINUM").is_duplicated().sum() == 0
    assert adae.sort("SRCROW")["SRCROW"].to_list() == list(range(2, len(EVENTS) + 2))
    assert adae["TRTEMFL"].unique().to_list() == ["Y"]
    # ASEQ numbers each patient's events 1, 2, …: patient 1's three episodes, patient 3's two terms.
    assert adae.filter(pl.col("SUBJID") == 1).sort("AEEPINUM")["ASEQ"].to_list() == [1, 2, 3]
    assert adae.filter(pl.col("SUBJID") == 3).sort("ASEQ")["AEDECOD"].to_list() == ["Fatigue", "Nausea/vomiting"]


def test_per_term_flag_is_on_the_worst_grade():
    flagged = _flagged(_adae(*EVENTS), "AOCCPIFL")
    assert flagged.height == 6  # patient-term pairs
    hfs1 = flagged.filter((pl.col("SUBJID") == 1) & (pl.col("AEDECOD") == "Hand foot skin syndrome")).row(0, named=True)
    assert (hfs1["AEEPINUM"], hfs1["ATOXGR"], hfs1["ATOXGRN"], hfs1["ATOXGRGP"]) == (2, "3", 3, "Grade 3/4")
    assert flagged.filter(pl.col("SUBJID") == 4)["AEEPINUM"].to_list() == [1]  # anemia at grade 5 first, then 2


def test_ties_at_the_worst_grade_go_to_the_earliest_episode_whatever_the_file_order():
    adae = _adae(
        (1, "Hypertension", 3, 3),  # listed first, but the third episode
        (1, "Hypertension", 2, 1),
        (1, "Hypertension", 1, 3),
        (1, "Diarrhea", 1, 3),
        (2, "Fatigue", 2, 2),
        (2, "Fatigue", 1, 2),
    )
    per_term = _flagged(adae, "AOCCPIFL").sort("SUBJID", "AEDECOD")
    assert per_term.select("SUBJID", "AEDECOD", "AEEPINUM", "ATOXGRN").rows() == [
        (1, "Diarrhea", 1, 3),
        (1, "Hypertension", 1, 3),
        (2, "Fatigue", 1, 2),
    ]
    # Over all terms patient 1 is at grade 3 in diarrhoea and hypertension, both first episodes: the lower ASEQ wins.
    per_patient = _flagged(adae, "AOCCIFL").sort("SUBJID")
    assert per_patient.select("SUBJID", "AEDECOD", "AEEPINUM", "ASEQ").rows() == [(1, "Diarrhea", 1, 1), (2, "Fatigue", 1, 1)]


def test_flags_consider_only_treatment_emergent_events():
    # A worse event that is not treatment-emergent (none is in this study) must not take the flag from one that is.
    adae = _adae((1, "Fatigue", 1, 4), (1, "Fatigue", 2, 1)).with_columns(
        TRTEMFL=pl.when(pl.col("AEEPINUM") == 1).then(pl.lit("N")).otherwise(pl.lit("Y"))
    )
    assert _flagged(derive_aoccpifl(adae.drop("AOCCPIFL")), "AOCCPIFL")["AEEPINUM"].to_list() == [2]


def _shipped_records() -> pl.DataFrame:
    raw = validation.read_raw(SHIPPED_DATA / schemas.ADVERSE_EVENTS.location, schemas.ADVERSE_EVENTS)
    return validation.clean(raw, schemas.ADVERSE_EVENTS, validation.problems(raw, schemas.ADVERSE_EVENTS))


def test_shipped_adae_has_a_row_per_valid_record_and_one_flag_per_patient_and_term():
    records = _shipped_records()
    adae = derive_adae(records, studyid=SHIPPED_STUDY.studyid)
    assert adae.height == records.height == len((SHIPPED_DATA / "adverse_events.csv").read_text().splitlines()) - 1
    assert set(adae.select("SRCFILE", "SRCROW").rows()) == set(records.select("_file", "_row").rows())
    worst = adae.group_by("SUBJID", "AEDECOD").agg(pl.col("ATOXGRN").max().alias("worst"), pl.col("AOCCPIFL").eq("Y").sum().alias("flags"))
    assert worst["flags"].to_list() == [1] * worst.height
    flagged = _flagged(adae, "AOCCPIFL").join(worst, on=["SUBJID", "AEDECOD"])
    assert (flagged["ATOXGRN"] == flagged["worst"]).all()
    per_patient = adae.group_by("SUBJID").agg(pl.col("ATOXGRN").max().alias("worst"), pl.col("AOCCIFL").eq("Y").sum().alias("flags"))
    assert per_patient["flags"].to_list() == [1] * per_patient.height
    flagged = _flagged(adae, "AOCCIFL").join(per_patient, on="SUBJID")
    assert (flagged["ATOXGRN"] == flagged["worst"]).all()
    # The three terms with two episodes (data/README.md): the flag is on the later, worse one.
    repeated = adae.filter(pl.len().over("SUBJID", "AEDECOD") > 1)
    assert _flagged(repeated, "AOCCPIFL").select("SUBJID", "AEDECOD", "AEEPINUM").sort("SUBJID").rows() == [
        (3, "Hand foot skin syndrome", 2),
        (5, "Hypertension", 2),
        (6, "Hypertension", 2),
    ]


def test_shipped_table_4_from_the_flags_is_the_worst_grade_table():
    """Table 4 counted from ADAE's flags equals each patient's worst grade taken straight from the records, as the paper prints it."""
    records = _shipped_records()
    adsl = _adsl(19)
    table = toxicity.ae_summary(derive_adae(records, studyid=SHIPPED_STUDY.studyid), adsl)

    def counts(worst: pl.DataFrame) -> dict[str, int]:
        groups = worst.with_columns(
            toxicity_group=pl.when(pl.col("worst") <= 2).then(pl.lit("g12")).when(pl.col("worst") <= 4).then(pl.lit("g34")).otherwise(pl.lit("g5"))
        )
        return {"total_n": worst.height, **{f"{g}_n": groups["toxicity_group"].eq(g).sum() for g in toxicity.GRADE_GROUPS}}

    by_term = records.group_by("term", "patient_id").agg(pl.col("ctcae_grade").max().alias("worst"))
    for row in table.filter(pl.col("section") == toxicity.TERM).iter_rows(named=True):
        expected = counts(by_term.filter(pl.col("term") == row["term"]))
        assert {k: row[k] for k in expected} == expected, row["term"]
    assert set(table.filter(pl.col("section") == toxicity.TERM)["term"]) == set(by_term["term"])
    overall = counts(records.group_by("patient_id").agg(pl.col("ctcae_grade").max().alias("worst")))
    any_event = table.filter(pl.col("section") == toxicity.ANY_EVENT).row(0, named=True)
    assert {k: any_event[k] for k in overall} == overall
    # As printed: hand-foot skin syndrome in 7 (5 at grade 1/2, 2 at 3/4); grade 3/4 events in 4 patients.
    hfs = table.filter(pl.col("term") == "Hand foot skin syndrome").row(0, named=True)
    assert (hfs["total_n"], hfs["g12_n"], hfs["g34_n"]) == (7, 5, 2)
    assert any_event["g34_n"] + any_event["g5_n"] == 4
