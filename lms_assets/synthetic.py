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
import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lms_assets.records.declarations import SEX_CODES, SUBGROUP_KEYS
from lms_assets.records.study import SHIPPED_STUDY_DIR, STUDY_FILE, load_study
from lms_assets.tables.printed import slug

ACCRUAL_START = dt.date(2018, 1, 1)
ACCRUAL_DAYS = 731  # January 2018 to December 2019: every patient starts before the first cut
FIRST_CUT = dt.date(2020, 3, 31)
CUT_SPACING_MONTHS = 6
DAYS_PER_MONTH = 365.25 / 12

SEXES = ("Female", "Male")
CHEMOTHERAPY = ("No", "1 line", "2 line", "3 line and more")
RESPONSES = ("CR", "PR", "SD", "PD")


# The study the synthetic folders imitate: their vocabulary, subgroups and report layout are its declarations
# (study.toml), and their adverse-event shares its printed Table 4.
SHIPPED = load_study(SHIPPED_STUDY_DIR)
COMBINATIONS = SHIPPED.values("patients", "combination_therapy")
SITES = SHIPPED.values("allocations", "primary_site")
# The generator's shares of each combination and site, in the declared order (Table 1's shares, loosely).
COMBINATION_SHARES = (0.632, 0.158, 0.08, 0.08, 0.05)
SITE_SHARES = (0.42, 0.26, 0.21, 0.055, 0.055)


def _declarations() -> str:
    """The shipped study.toml's declarations (treatment code, vocabulary, sex-restricted sites, subgroups, report
    layout), written again from the loaded study."""
    lines = [f"treatment_code = {json.dumps(SHIPPED.treatment_code)}\n"] if SHIPPED.treatment_code else []
    lines += [f"[vocabulary.{file}]\n" + "".join(f"{c} = {json.dumps(list(v))}\n" for c, v in cs.items()) for file, cs in SHIPPED.vocabulary.items()]
    sexes = {code: sex for sex, code in SEX_CODES.items()}
    lines += ["[sex_restricted_sites]\n" + "".join(f"{json.dumps(s)} = {json.dumps(sexes[c])}\n" for s, c in SHIPPED.sex_restricted_sites.items())]
    lines += ["".join("[[subgroups]]\n" + "".join(f"{k} = {json.dumps(getattr(s, k))}\n" for k in SUBGROUP_KEYS)) for s in SHIPPED.subgroups]
    lines += [
        f"[[report_tables]]\nheading = {json.dumps(t.heading)}\nsource = {json.dumps(t.source)}\nowners = {json.dumps(list(t.owners))}\n"
        for t in SHIPPED.report_tables
    ]
    lines.append("[survival_rows]\n" + "".join(f"{key} = {json.dumps(label)}\n" for key, label in SHIPPED.survival_rows))
    return "".join(lines)


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
        "\n# The shipped study's declarations (data/study.toml): its vocabulary, subgroups and report tables, with nothing printed beside them.\n"
        + _declarations()
    )


def _ae_terms() -> tuple[tuple[str, float, bool], ...]:
    """Each declared term with the share of patients who had it (any grade, to 0.1%) and whether grade 3/4 was seen,
    from the shipped registry's Table 4 counts (``ae.<term>.any.n`` and ``.g34.n`` over ``patients.n``), most frequent
    first as Table 4 prints them."""
    with (SHIPPED_STUDY_DIR / "printed_values.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    printed = {row["quantity"]: float(row["value"]) for row in reversed(rows)}  # each quantity's first printing
    terms = {slug(term): term for term in SHIPPED.values("adverse_events", "term")}
    order = dict.fromkeys(q.split(".")[1] for q in (row["quantity"] for row in rows) if q.startswith("ae.") and q.endswith(".any.n"))
    return tuple((terms[s], round(printed[f"ae.{s}.any.n"] / printed["patients.n"], 3), printed[f"ae.{s}.g34.n"] > 0) for s in order if s in terms)


AE_TERMS = _ae_terms()
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
            "combination_therapy": _labels(COMBINATIONS, _draw(rng, COMBINATIONS, COMBINATION_SHARES, n)),
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
    """patient_allocations.csv: Table 1 sites (a sex-restricted site, study.toml's, for that sex only) and doses; dose
    reductions and stops follow grade 3/4 events."""
    n = patients.height
    sex = patients["sex"].replace_strict(SEX_CODES).to_numpy()
    draws = {
        code: _draw(rng, SITES, tuple(0.0 if SHIPPED.sex_restricted_sites.get(s, code) != code else p for s, p in zip(SITES, SITE_SHARES)), n)
        for code in sorted(SEX_CODES.values())
    }
    site = np.select([sex == code for code in draws], list(draws.values()))
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
    """True times in months from the start of treatment: progression, death (never before progression), loss to follow-up.

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
