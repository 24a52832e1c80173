"""Synthetic study folders of any size, shaped like ``data/``, for scale tests and benchmarks.

    python -m lms_assets.synthetic --patients 100000 --seed 7 --out /tmp/study [--cuts 3]

Every value is drawn from a seeded NumPy ``Generator`` (vectorised: a million patients take seconds),
with distributions loosely following the published cohort (Tables 1, 3 and 4). The folder passes the
foundation's validation row for row: nothing is quarantined. It has no ``printed_values.csv``,
because no paper describes synthetic patients; ``provenance.csv`` says every file is synthetic and
names the seed. Its ``study.toml`` allows excluding quarantined rows: a registry of this size accepts losses,
and a damaged copy of a synthetic folder should shrink (and say so), not stop. The same patients, seed and
cuts always give byte-identical files.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lms_assets.records.study import STUDY_FILE, load_study

ACCRUAL_START = dt.date(2018, 1, 1)
ACCRUAL_DAYS = 731  # January 2018 to December 2019: every patient starts before the first cut
FIRST_CUT = dt.date(2020, 3, 31)
CUT_SPACING_MONTHS = 6
DAYS_PER_MONTH = 365.25 / 12

SEXES = ("Female", "Male")
CHEMOTHERAPY = ("No", "1 line", "2 line", "3 line and more")
COMBINATIONS = ("None", "Immunotherapy", "Chemotherapy", "Radiotherapy", "Immunotherapy+Chemotherapy")
SITES = ("Retroperitoneal", "Extremities", "Pelvis", "Uterus", "Lung")
RESPONSES = ("CR", "PR", "SD", "PD")


# The study the synthetic folders imitate: their report lays its summaries out as this study's tables.
SHIPPED_STUDY = Path(__file__).resolve().parents[1] / "data"


def _report_layout() -> str:
    """The shipped study.toml's ``[[report_tables]]`` and ``[survival_rows]``, written again from the loaded study."""
    shipped = load_study(SHIPPED_STUDY)
    tables = "".join(
        f"[[report_tables]]\nheading = {json.dumps(t.heading)}\nsource = {json.dumps(t.source)}\nowners = {json.dumps(list(t.owners))}\n"
        for t in shipped.report_tables
    )
    return tables + "[survival_rows]\n" + "".join(f"{key} = {json.dumps(label)}\n" for key, label in shipped.survival_rows)


# A damaged copy of a synthetic folder shrinks (and says so) up to a tenth of its rows; past that it stops.
MAX_EXCLUDED_SHARE = 0.1


def study_toml(patients: int, seed: int) -> str:
    """The folder's study.toml (see data/README.md, "study.toml"): named by the seed, enrolled over the accrual window."""
    return (
        "# Written by lms_assets.synthetic: no paper describes these patients; the identity names the generator's seed.\n"
        f'studyid = "SYNTHETIC-{seed}"\n'
        f'title = "Synthetic study of {patients:,} patients (seed {seed})"\n'
        "# The accrual window the generator draws every start of treatment from (ACCRUAL_START, ACCRUAL_DAYS).\n"
        f"enrolment_start = {ACCRUAL_START.isoformat()}\n"
        f"enrolment_end = {(ACCRUAL_START + dt.timedelta(days=ACCRUAL_DAYS - 1)).isoformat()}\n"
        "# A synthetic registry accepts losses, so quarantined rows are left out (every summary says how many\n"
        "# patients) instead of stopping the cohort.\n"
        "exclude_quarantined_rows = true\n"
        "# Losses, but not so many that the analysis is no longer of the study generated.\n"
        f"max_excluded_share = {MAX_EXCLUDED_SHARE}\n"
        "\n# The report lays the summaries out as the paper's Tables 1, 2 and 4 (data/study.toml), with nothing printed beside them.\n"
        + _report_layout()
    )


# Table 4's terms with the share of patients who had each (any grade), and whether grade 3/4 was seen.
AE_TERMS = (
    ("Hand foot skin syndrome", 0.368, True),
    ("Fatigue", 0.316, False),
    ("Hypertension", 0.316, True),
    ("Local Pain", 0.211, False),
    ("Nausea/vomiting", 0.211, False),
    ("ALT elevation", 0.158, False),
    ("Insomnia", 0.158, False),
    ("Oral ulcers", 0.158, True),
    ("Diarrhea", 0.105, False),
    ("Anemia", 0.105, False),
    ("Hypoproteinemia", 0.105, False),
    ("Constipation", 0.053, False),
)
# Grades 1-4 per episode: mostly mild; terms that reached grade 3/4 in Table 4 do so more often.
GRADES_SEVERE_TERM = (0.45, 0.38, 0.14, 0.03)
GRADES_MILD_TERM = (0.62, 0.34, 0.035, 0.005)
# P(another episode of the same term): episodes per term are geometric, mean 1 / (1 - p).
REPEAT_EPISODE = 0.25


@dataclass(frozen=True)
class Study:
    """The record files of one synthetic study, as frames keyed by their path in the study folder."""

    patients: int
    seed: int
    files: dict[str, pl.DataFrame]


def cut_dates(cuts: int) -> list[dt.date]:
    """Data cuts at month ends every six months from 31 March 2020, after accrual has closed."""
    dates = []
    for i in range(cuts):
        month0 = FIRST_CUT.year * 12 + FIRST_CUT.month - 1 + i * CUT_SPACING_MONTHS
        year, month = divmod(month0, 12)
        dates.append(dt.date(year, month + 1, calendar.monthrange(year, month + 1)[1]))
    return dates


def _draw(rng: np.random.Generator, labels: tuple[str, ...], p: tuple[float, ...], n: int) -> np.ndarray:
    """Category indices drawn with probabilities ``p`` (normalised, so rounded shares may be used)."""
    weights = np.asarray(p, dtype=float)
    return rng.choice(len(labels), size=n, p=weights / weights.sum())


def _labels(labels: tuple[str, ...], index: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(labels, dtype=object)[index], dtype=pl.String)


def baseline(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """patients.csv: Table 1 shares for sex, ECOG, prior treatment and combination therapy; age ~ N(53, 11) in 18–90."""
    age = np.clip(np.rint(rng.normal(53, 11, n)), 18, 90).astype(np.int64)
    yes_no = ("Yes", "No")
    return pl.DataFrame(
        {
            "patient_id": np.arange(1, n + 1, dtype=np.int64),
            "age": age,
            "sex": _labels(SEXES, _draw(rng, SEXES, (0.737, 0.263), n)),
            "ecog": _draw(rng, ("0", "1", "2", "3"), (0.26, 0.26, 0.43, 0.05), n).astype(np.int64),
            "surgery_history": _labels(yes_no, _draw(rng, yes_no, (0.737, 0.263), n)),
            "radiotherapy_history": _labels(yes_no, _draw(rng, yes_no, (0.316, 0.684), n)),
            "chemotherapy_history": _labels(CHEMOTHERAPY, _draw(rng, CHEMOTHERAPY, (0.263, 0.368, 0.211, 0.158), n)),
            "combination_therapy": _labels(COMBINATIONS, _draw(rng, COMBINATIONS, (0.632, 0.158, 0.08, 0.08, 0.05), n)),
        }
    )


def best_response(rng: np.random.Generator, patients: pl.DataFrame) -> pl.DataFrame:
    """response.csv: RECIST 1.1 best response, with a best % change inside its band (PR ≤ −30, SD in (−30, 20), PD ≥ 20, CR −100).

    Immunotherapy combinations respond more often (two of three patients reached PR in the paper).
    """
    n = patients.height
    immuno = patients["combination_therapy"].str.contains("Immunotherapy").to_numpy()
    category = np.where(
        immuno,
        _draw(rng, RESPONSES, (0.03, 0.35, 0.47, 0.15), n),
        _draw(rng, RESPONSES, (0.01, 0.13, 0.58, 0.28), n),
    )
    bands = {
        0: np.full(n, -100.0),
        1: rng.uniform(-95.0, -30.0, n),
        2: rng.uniform(-29.9, 19.9, n),
        3: np.minimum(20.0 + rng.exponential(30.0, n), 500.0),
    }
    change = np.select([category == k for k in bands], list(bands.values()))
    return pl.DataFrame(
        {
            "patient_id": patients["patient_id"],
            # Rounded to the printed 0.1 %; the band edges are whole, so a value never changes band.
            "best_pct_change": np.round(change, 1),
            "best_response": _labels(RESPONSES, category),
        }
    )


def allocations(rng: np.random.Generator, patients: pl.DataFrame, worst_grade: np.ndarray) -> pl.DataFrame:
    """patient_allocations.csv: Table 1 sites (uterus for women only) and doses; dose reductions and stops follow grade 3/4 events."""
    n = patients.height
    female = (patients["sex"] == "Female").to_numpy()
    site = np.where(
        female,
        _draw(rng, SITES, (0.42, 0.26, 0.21, 0.055, 0.055), n),
        _draw(rng, SITES, (0.42, 0.26, 0.21, 0.0, 0.055), n),
    )
    severe = worst_grade >= 3
    reduced = rng.random(n) < np.where(severe, 0.75, 0.18)
    stopped = rng.random(n) < np.where(severe, 0.30, 0.02)
    yes_no = np.asarray(["No", "Yes"], dtype=object)
    return pl.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "primary_site": _labels(SITES, site),
            "starting_dose_mg": np.where(rng.random(n) < 0.789, 12, 10).astype(np.int64),
            "dose_reduced": pl.Series(yes_no[reduced.astype(int)], dtype=pl.String),
            "discontinued_for_toxicity": pl.Series(yes_no[stopped.astype(int)], dtype=pl.String),
        }
    )


def adverse_events(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """adverse_events.csv: each Table 4 term at its published share of patients, geometric episodes, grades 1–4 mostly 1–2.

    About 2.3 terms and 3 episodes per patient.
    """
    share = np.asarray([t[1] for t in AE_TERMS])
    had = rng.random((n, len(AE_TERMS))) < share
    patient_idx, term_idx = np.nonzero(had)
    episodes = rng.geometric(1.0 - REPEAT_EPISODE, patient_idx.size)
    rows = np.repeat(np.arange(patient_idx.size), episodes)
    # Episode number within each (patient, term): position minus the start of its run.
    starts = np.repeat(np.cumsum(episodes) - episodes, episodes)
    episode = np.arange(rows.size) - starts + 1
    term = term_idx[rows]
    severe_term = np.asarray([t[2] for t in AE_TERMS])[term]
    grade = (
        np.where(
            severe_term,
            _draw(rng, ("1", "2", "3", "4"), GRADES_SEVERE_TERM, rows.size),
            _draw(rng, ("1", "2", "3", "4"), GRADES_MILD_TERM, rows.size),
        )
        + 1
    )
    return pl.DataFrame(
        {
            "patient_id": (patient_idx[rows] + 1).astype(np.int64),
            "term": _labels(tuple(t[0] for t in AE_TERMS), term),
            "episode": episode.astype(np.int64),
            "ctcae_grade": grade.astype(np.int64),
        }
    )


def event_times(rng: np.random.Generator, patients: pl.DataFrame, response: pl.DataFrame) -> dict[str, np.ndarray]:
    """True times in months from the start of anlotinib: progression, death (never before progression), loss to follow-up.

    Median PFS ~4 months overall (longer after a response, shorter with ECOG ≥ 2); 6 % die before any
    recorded progression, so their death is the PFS event; the rest live a median ~16 months after progression.
    """
    n = patients.height
    median_pfs = response["best_response"].replace_strict({"CR": 18.0, "PR": 9.0, "SD": 4.5, "PD": 1.8}, return_dtype=pl.Float64).to_numpy()
    frail = patients["ecog"].to_numpy() >= 2
    median_pfs = median_pfs * np.where(frail, 0.75, 1.0)
    progression = rng.exponential(median_pfs / np.log(2))
    after = rng.exponential(np.where(frail, 11.0, 16.0) / np.log(2))
    death = progression + np.where(rng.random(n) < 0.06, 0.0, after)
    return {
        "entry_day": rng.integers(0, ACCRUAL_DAYS, n),
        "progression": progression,
        "death": death,
        "lost": rng.exponential(120.0 / np.log(2), n),
    }


def followup_at(times: dict[str, np.ndarray], patient_id: pl.Series, cut: dt.date) -> pl.DataFrame:
    """followup/<cut>.csv: times censored at the cut or at loss to follow-up, whichever comes first.

    A later cut only lengthens the window, so a death stays a death at the same time, a progression
    stays a progression, and no time shrinks. Death at the PFS time is a PFS event (progressed = 1).
    """
    window = (cut - ACCRUAL_START).days - times["entry_day"]
    observed_until = np.minimum(window / DAYS_PER_MONTH, times["lost"])
    # Times are printed to 0.1 month; rounding is monotone, so OS ≥ PFS survives it.
    pfs = np.round(np.minimum(times["progression"], observed_until), 1)
    os_ = np.round(np.minimum(times["death"], observed_until), 1)
    return pl.DataFrame(
        {
            "patient_id": patient_id,
            "pfs_months": pfs,
            "progressed": (times["progression"] <= observed_until).astype(np.int64),
            "os_months": os_,
            "died": (times["death"] <= observed_until).astype(np.int64),
        }
    )


def provenance(patients: int, seed: int, cuts: list[dt.date]) -> pl.DataFrame:
    """provenance.csv: every file is synthetic, drawn by this module with the named seed."""
    origin = f"lms_assets.synthetic --patients {patients} --seed {seed} --cuts {len(cuts)}"
    files = ["patients.csv", "patient_allocations.csv", "response.csv", *(f"followup/{c.isoformat()}.csv" for c in cuts), "adverse_events.csv"]
    return pl.DataFrame(
        {
            "file": files,
            "column": ["*"] * len(files),
            "patient_ids": ["all"] * len(files),
            "origin": ["synthetic"] * len(files),
            "location": [origin] * len(files),
            "constraint": ["no printed values; not real patients"] * len(files),
        }
    )


def generate(patients: int, seed: int, cuts: int = 3) -> Study:
    """A synthetic study of ``patients`` patients and ``cuts`` data cuts, deterministic for ``seed``."""
    if patients < 1:
        raise ValueError("a study needs at least one patient")
    if cuts < 1:
        raise ValueError("a study needs at least one data cut")
    rng = np.random.default_rng(seed)
    people = baseline(rng, patients)
    response = best_response(rng, people)
    events = adverse_events(rng, patients)
    worst = np.zeros(patients, dtype=np.int64)
    np.maximum.at(worst, events["patient_id"].to_numpy() - 1, events["ctcae_grade"].to_numpy())
    times = event_times(rng, people, response)
    dates = cut_dates(cuts)
    files = {
        "patients.csv": people,
        "patient_allocations.csv": allocations(rng, people, worst),
        "response.csv": response,
        **{f"followup/{c.isoformat()}.csv": followup_at(times, people["patient_id"], c) for c in dates},
        "adverse_events.csv": events,
        "provenance.csv": provenance(patients, seed, dates),
    }
    return Study(patients=patients, seed=seed, files=files)


def write(study: Study, out: Path) -> None:
    """Write the study's files under ``out``, which must not already hold files."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder so no old data cut is mixed in")
    (out / "followup").mkdir(parents=True, exist_ok=True)
    for relative, frame in study.files.items():
        frame.write_csv(out / relative, float_precision=1)
    (out / STUDY_FILE).write_text(study_toml(study.patients, study.seed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lms_assets.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, required=True, help="number of patients")
    parser.add_argument("--seed", type=int, required=True, help="seed of the random generator")
    parser.add_argument("--out", type=Path, required=True, help="new or empty folder to write the study into")
    parser.add_argument("--cuts", type=int, default=3, help="number of follow-up data cuts (default 3)")
    args = parser.parse_args(argv)
    study = generate(args.patients, args.seed, args.cuts)
    write(study, args.out)
    rows = sum(f.height for f in study.files.values())
    print(f"Wrote {args.patients} synthetic patients ({rows} rows, {args.cuts} cut(s), seed {args.seed}) to {args.out}")


if __name__ == "__main__":
    main()
