"""The data dictionary: one description per column of every warehouse table, the text Dagster's column schema
shows and data/README.md prints ("Tables in the warehouse").

Raw tables take their column descriptions from the record schemas (``lms_assets/records/schemas.py``), the one
place a record file's columns are declared; ADaM, summary and audit tables from ``DERIVED`` below. Plain text
throughout: the UI shows descriptions as they are, so markup (backticks) would show as such.

An ADaM variable's label, origin (Collected, Derived, Assigned, Reconstructed, Not Available) and derivation are
declared beside the derivations (``lms_assets.adam.variables``); ``adam_variables`` gives them with the
description, per dataset, as the standard exports' metadata lists them.
"""

from __future__ import annotations

import re

from lms_assets.adam import variables
from lms_assets.records import schemas

# Columns that mean the same wherever they occur.
COMMON = {
    "STUDYID": "Study identifier",
    "USUBJID": "Unique subject identifier: study and patient number",
    "SUBJID": "Patient number in the study (Table 3 row)",
    "SRCFILE": "Record file the row was derived from",
    "SRCROW": "Line of that record file",
    "data_cut": "Data cut (follow-up export date) the row belongs to",
    "endpoint": "PFS (progression-free survival) or OS (overall survival)",
    "patients": "Patient numbers counted in the row",
    "key": "Stable row id, the quantity part of the registry's value ids",
    "n": "Number of patients",
    "denominator": "Patients the percentage is of",
    "pct": "Percentage of the denominator",
    "note": "Why a value is missing or qualified",
    "value_id": "Registry id of the printed value: where printed, then the quantity",
    "source": "Where in the paper the value is printed",
    "quantity": "What the value measures; printings of one quantity share it",
    "median": "Median survival time, months (first time the curve reaches 0.5 or below)",
    "median_midpoint": "Median as R and SAS give it: midpoint of a plateau at exactly 0.5",
    "ci_lower": "Lower bound of the 95% confidence interval",
    "ci_upper": "Upper bound of the 95% confidence interval",
    "events": "Number of events (progression or death for PFS, death for OS)",
    "status": "Outcome of the comparison",
    "basis": "What the value can be recomputed from: the paper's patient rows, a reconstruction, or nothing",
    "findings": "Inconsistencies the paper shows about the value",
    "explanation": "The findings in words",
    "sensitivity_range": "How far the value moves over every reconstruction consistent with the paper",
}

# Added by the ingest to every raw table.
RAW_EXTRAS = {
    "_file": "Record file the row was read from",
    "_row": "Line of the record file (the header is line 1)",
    "content_hash": "SHA-256 of the record file's content (for follow-up, of that cut's file)",
    "data_cut": "Data cut, from the file name (its ISO date)",
}


def _table(names: str, **specific: str) -> dict[str, str]:
    """A table's columns in order: those named in ``names`` (space-separated) from ``COMMON`` unless given in ``specific``."""
    columns = {name: specific.get(name) or COMMON[name] for name in names.split()}
    unknown = set(specific) - set(columns)
    if unknown:
        raise ValueError(f"described but not listed: {sorted(unknown)}")
    return columns


DERIVED: dict[str, dict[str, str]] = {
    "adsl": _table(
        "STUDYID USUBJID SUBJID AGE AGEU SEX ECOG ECOGGR1 SURGFL RADIOFL PRCHLN PRCHCAT PRCHFL COMBTRT COMBFL IMMUNOFL PRIMSITE DOSE0 DOSREDFL "
        "DISCAEFL RECONVAR SAFFL FASFL TRT01P TRT01A ECOGBL DOSE0U DTHFL",
        AGE="Age at start of the study treatment",
        AGEU="Unit of age (YEARS)",
        SEX="Sex (F, M)",
        ECOG="ECOG performance status at baseline",
        ECOGGR1="ECOG group as Table 1 counts it",
        SURGFL="Prior surgery (Y, N)",
        RADIOFL="Prior radiotherapy (Y, N)",
        PRCHLN="Lines of prior chemotherapy",
        PRCHCAT="Prior chemotherapy as printed (No, 1 line, 2 line, 3 line and more)",
        PRCHFL="Any prior chemotherapy (Y, N)",
        COMBTRT="Therapy combined with the study treatment (None if alone)",
        COMBFL="The study treatment combined with another therapy (Y, N)",
        IMMUNOFL="Combination includes immunotherapy (Y, N)",
        PRIMSITE="Primary tumour site",
        DOSE0="Starting daily dose of the study treatment, in DOSE0U (mg)",
        DOSREDFL="Dose reduced for toxicity (Y, N)",
        DISCAEFL="The study treatment stopped for adverse reactions (Y, N)",
        RECONVAR="Variables whose value is reconstructed, not printed (provenance.csv); null if none",
        SAFFL="Safety population: took at least one dose (Y for every patient the study admits)",
        FASFL="Full analysis population: the patients efficacy is analysed in (Y, N)",
        TRT01P="Planned treatment (single arm)",
        TRT01A="Actual treatment: the planned one, with the therapy combined with it if any",
        ECOGBL="ECOG performance status at baseline (before the first dose)",
        DOSE0U="Unit of DOSE0 (MG)",
        DTHFL="Y: died by the latest data cut; null otherwise",
    ),
    "adrs": _table(
        "STUDYID USUBJID SUBJID PARAMCD PARAM PARAMN AVALC AVAL PCHG SRCFILE SRCROW",
        PARAMCD="Parameter code (BOR: best overall response; ORR: objective response; DCR: disease control)",
        PARAM="Parameter in words",
        PARAMN="Parameter number (BOR 1, ORR 2, DCR 3)",
        AVALC="BOR: recorded RECIST 1.1 best overall response (CR, PR, SD, PD, NE); ORR, DCR: responder (Y, N)",
        AVAL="BOR: the response coded CR 1, PR 2, SD 3, PD 5, NE 6; ORR, DCR: responder 1, else 0",
        PCHG="BOR: best % change of the target-lesion sum from baseline (as in ADTR); null on ORR and DCR",
    ),
    "adtr": _table(
        "STUDYID USUBJID SUBJID PARAMCD PARAM PARAMN AVISIT PCHG SRCFILE SRCROW",
        PARAMCD="Parameter code (SDIAM: sum of target-lesion diameters)",
        PARAM="Parameter in words",
        PARAMN="Parameter number (SDIAM 1)",
        AVISIT="Analysis visit: BEST, the assessment of the best change (the records hold no visits)",
        PCHG="Best % change of the target-lesion sum from baseline",
    ),
    "adtte": _table(
        "STUDYID USUBJID SUBJID DATACUT PARAMCD PARAM AVAL CNSR EVNTDESC SRCFILE SRCROW SRCHASH AVALU AVALRFL CNSDTDSC PARAMN TRTP ASEQ",
        DATACUT="Data cut the time is measured at: the follow-up file's date, the only date the records hold",
        PARAMCD="Endpoint code (PFS, OS)",
        PARAM="Endpoint in words",
        AVAL="Time from start of the study treatment to the event or censoring, in months: a duration, as the paper prints no dates",
        CNSR="Censored: 1 = no event observed by the cut, 0 = event",
        EVNTDESC="What ended the time: Progression or Death (the event), or the censoring",
        SRCHASH="SHA-256 of the source cut file",
        AVALU="Unit of the time (MONTHS)",
        AVALRFL="Y: the time or its censoring rests on a reconstructed record (provenance.csv); null if as printed",
        CNSDTDSC="Source of a censored time: Last tumour assessment (PFS) or Last contact (OS); null for an event",
        PARAMN="Parameter number (PFS 1, OS 2)",
        TRTP="Planned treatment (ADSL.TRT01P)",
        ASEQ="Sequence number of the row within the patient: data cut, then PARAMN",
    ),
    "adae": _table(
        "STUDYID USUBJID SUBJID ASEQ AETERM AEDECOD AEEPINUM ATOXGR ATOXGRN ATOXGRGP TRTEMFL AOCCIFL AOCCPIFL AEREL SRCFILE SRCROW",
        ASEQ="Sequence number of the event within the patient: term, then episode (the records carry no dates)",
        AETERM="Adverse event term as recorded (Table 4's wording)",
        AEDECOD="Adverse event term as in Table 4: AETERM, not coded to MedDRA",
        AEEPINUM="Episode number of this term for this patient, as recorded",
        ATOXGR="CTCAE 4.03 grade of the episode, as text (1 to 5)",
        ATOXGRN="CTCAE 4.03 grade of the episode, as a number",
        ATOXGRGP="Grade group as Table 4 counts it (1/2, 3/4, 5)",
        TRTEMFL="Treatment-emergent (Y)",
        AOCCIFL="Y on the patient's first event at their worst grade over all terms (Table 4's any-event row)",
        AOCCPIFL="Y on the patient's first event of the term at its worst grade (Table 4's term rows)",
        AEREL="Causality of the event: null, as the records hold none (the paper calls Table 4's events treatment-related as a whole)",
        SRCFILE="Record file the event was read from",
        SRCROW="Line of the record file (the header is line 1)",
    ),
    "adam_exports": _table(
        "data_cut table rows variables json xpt",
        data_cut="Data cut the files hold (ADTTE's rows at it; the other datasets have no cut)",
        table="ADaM dataset exported",
        rows="Rows written",
        variables="Variables written",
        json="The CDISC Dataset-JSON v1.1 file, in the outputs folder",
        xpt="The SAS XPORT v5 file, in the outputs folder",
    ),
    "baseline_summary": _table(
        "characteristic level key n pct value patients",
        characteristic="Characteristic as Table 1 names it",
        level="Category or statistic of the characteristic",
        n="Patients in the category",
        pct="Percentage of all patients",
        value="Statistic of a numeric characteristic (median, minimum, maximum)",
    ),
    "response_summary": _table(
        "row key n denominator pct ci_lower_pct ci_upper_pct ci_method patients",
        row="Row as Table 2 prints it",
        n="Patients with the response",
        ci_lower_pct="Lower bound of the 95% confidence interval, percent",
        ci_upper_pct="Upper bound of the 95% confidence interval, percent",
        ci_method="Method of the confidence interval",
    ),
    "tumour_shrinkage": _table(
        "key statistic data_cut n denominator pct mean_pct p_value test patients",
        statistic="What the row measures, in words",
        data_cut="Data cut of a survival-based row (empty otherwise)",
        n="Patients counted",
        mean_pct="Mean best % change of the target-lesion sum",
        p_value="p-value of the test",
        test="Statistical test used",
    ),
    "recist_consistency": _table(
        "USUBJID SUBJID recorded_response best_pct_change threshold_range status reason",
        recorded_response="Recorded RECIST 1.1 best overall response",
        best_pct_change="Best % change of the target-lesion sum from baseline",
        threshold_range="RECIST 1.1 range the % change falls in",
        status="consistent, or how the recorded response departs from the range",
        reason="The status in words",
    ),
    "ae_summary": _table(
        "section term key denominator total_n total_pct g12_n g12_pct g34_n g34_pct g5_n g5_pct patients patients_g12 patients_g34 patients_g5",
        section="Part of Table 4 (adverse event, or a summary row)",
        term="Adverse event term as in Table 4",
        total_n="Patients with the event at any grade",
        total_pct="Percentage of all patients with the event",
        g12_n="Patients whose worst grade is 1 or 2",
        g12_pct="Percentage of all patients, worst grade 1 or 2",
        g34_n="Patients whose worst grade is 3 or 4",
        g34_pct="Percentage of all patients, worst grade 3 or 4",
        g5_n="Patients who died of the event (grade 5)",
        g5_pct="Percentage of all patients, grade 5",
        patients="Patient numbers with the event at any grade",
        patients_g12="Patient numbers, worst grade 1 or 2",
        patients_g34="Patient numbers, worst grade 3 or 4",
        patients_g5="Patient numbers, grade 5",
    ),
    "survival_curves": _table(
        "data_cut endpoint time at_risk events censored surv std_err ci_lower ci_upper",
        time="Months since start of the study treatment at the step",
        at_risk="Patients at risk just before the time",
        events="Events at the time",
        censored="Patients censored at the time",
        surv="Kaplan–Meier survival probability after the time",
        std_err="Greenwood standard error of the survival probability",
        ci_lower="Lower bound of the pointwise 95% band (log(−log))",
        ci_upper="Upper bound of the pointwise 95% band (log(−log))",
    ),
    "survival_landmarks": _table(
        "data_cut endpoint month at_risk events_cum censored_cum surv ci_lower ci_upper note",
        month="Landmark month (every 3 months)",
        at_risk="Patients at risk at the month",
        events_cum="Events up to the month",
        censored_cum="Patients censored up to the month",
        surv="Kaplan–Meier survival probability at the month",
        ci_lower="Lower bound of the pointwise 95% band (log(−log))",
        ci_upper="Upper bound of the pointwise 95% band (log(−log))",
    ),
    "survival_summary": _table(
        "data_cut endpoint method n events median median_midpoint se ci_lower ci_upper note",
        method="Confidence-interval method: spss (median ± 1.96·SE, as SPSS 24) or brookmeyer_crowley_loglog",
        se="Standard error of the median (SPSS method)",
    ),
    "survival_followup": _table(
        "data_cut endpoint n censored median median_midpoint ci_lower ci_upper min max note patients",
        censored="Patients censored (the reverse Kaplan–Meier events)",
        median="Median follow-up, months (reverse Kaplan–Meier)",
        min="Shortest observed time, months",
        max="Longest observed time, months",
    ),
    "survival_subgroups": _table(
        "data_cut endpoint factor level reference n events median median_midpoint n_ref events_ref median_ref "
        "median_ref_midpoint hr hr_ci_lower hr_ci_upper cox_p logrank_p note",
        factor="Subgroup factor (sex, ECOG, combination therapy, ...)",
        level="Level compared with the reference",
        reference="Reference level",
        n="Patients at the level",
        events="Events at the level",
        median="Median survival at the level, months",
        median_midpoint="Median at the level as R and SAS give it",
        n_ref="Patients at the reference level",
        events_ref="Events at the reference level",
        median_ref="Median survival at the reference level, months",
        median_ref_midpoint="Median at the reference level as R and SAS give it",
        hr="Cox hazard ratio of the level against the reference",
        hr_ci_lower="Lower bound of the hazard ratio's 95% CI",
        hr_ci_upper="Upper bound of the hazard ratio's 95% CI",
        cox_p="Wald p-value of the Cox model",
        logrank_p="Log-rank p-value",
    ),
    "median_history": _table(
        "data_cut endpoint method n events median ci_lower ci_upper note",
        method="Confidence-interval method: spss or brookmeyer_crowley_loglog",
    ),
    "quarantine": _table(
        "file row column value reason patient_id",
        file="Record file holding the rejected row",
        row="Line of the file (the header is line 1)",
        column="Column whose value was rejected",
        value="The rejected value as written",
        reason="Why it was rejected",
        patient_id="Patient number of the row, when readable",
    ),
    "printed_values": _table(
        "value_id source quantity printed value unit decimals numerator denominator data_cut reviewed_expected "
        "reviewed_finding reviewed_reason reviewed_by reviewed_on owner check_name published_cut",
        printed="The text as printed",
        value="The numeric value as printed",
        unit="Unit: patients, percent, years, months or comparisons",
        decimals="Printed decimal places: the precision every comparison uses",
        numerator="Numerator of a printed k/n",
        denominator="Denominator of a printed k/n",
        data_cut="Data cut a survival value refers to",
        reviewed_expected="Value the table showed when a reviewed discrepancy was accepted",
        reviewed_finding="Consistency finding that explains a reviewed discrepancy",
        reviewed_reason="The review in words",
        reviewed_by="Who reviewed the discrepancy",
        reviewed_on="When it was reviewed",
        owner="Summary table that recomputes the value",
        check_name="Asset check comparing the value",
        published_cut="The data cut the paper's values refer to",
    ),
    "paper_consistency": _table(
        "value_id quantity source basis reconstruction findings explanation",
        reconstruction="Reconstructed records the value rests on, if any",
    ),
    "printed_audit": _table(
        "value_id source quantity published recomputed shown status check_outcome basis computed_by patients findings "
        "explanation check_reason hypotheses rounding rounding_flag sensitivity_verdict sensitivity_range",
        published="The value as printed",
        recomputed="The value recomputed from the records",
        shown="The recomputed value as the table shows it",
        status="reproduced, discrepancy or not recomputable",
        check_outcome="Outcome of the value's asset check",
        computed_by="Table that recomputes the value",
        check_reason="The check's verdict in words",
        hypotheses="Ways of computing the value tried for a discrepancy",
        rounding="Rounding rules and precisions that turn the recomputed value into the printed one (means, medians, percentages, CIs), or none",
        rounding_flag="Why the rounding is unusual: only a rule other than half-up at the printed precision reproduces it",
        sensitivity_verdict="Whether the value is fixed by the paper or moves with the reconstruction",
    ),
    "sensitivity_ranges": _table(
        "result value_id label rests_on coverage reconstructions shipped minimum maximum conclusion holds fails verdict sensitivity_range note",
        result="Result examined",
        label="The result in words",
        rests_on="Reconstructed inputs the result depends on",
        coverage="How much of the space of consistent reconstructions was examined",
        reconstructions="Number of reconstructions examined",
        shipped="The result with the shipped records",
        minimum="Smallest value over the reconstructions",
        maximum="Largest value over the reconstructions",
        conclusion="The paper's conclusion tested",
        holds="Share of reconstructions in which the conclusion holds",
        fails="Share of reconstructions in which it fails",
        verdict="robust, fragile, or fixed by the paper",
    ),
    "r_verification": _table(
        "table value data_cut endpoint key time statistic ours r abs_diff tolerance exception status reference",
        table="Our table compared",
        value="Paper value or table it belongs to",
        key="Row of our table",
        time="Time point of a curve comparison, months",
        statistic="Column compared",
        ours="Our value",
        r="Value computed independently in R",
        abs_diff="Absolute difference",
        tolerance="Largest difference accepted",
        exception="Why a known difference is accepted",
        status="agree or differ",
        reference="R and package versions",
    ),
    "analysis_results": _table(
        "data_cut analysis method group1 group1_level variable variable_level stat_name stat_label stat quantity basis n patients "
        "source_file source_rows",
        analysis="Summary table (warehouse table and asset) that computes the statistic",
        method="How the statistic was computed",
        group1="Grouping variable (PARAMCD, ATOXGRGP, COMBFL, IMMUNOFL); empty when ungrouped",
        group1_level="Level of group1 (PFS or OS, a CTCAE grade group, Y or N)",
        variable="What is summarised: an ADaM variable, or a derived rate",
        variable_level="Level of the variable: a category, an adverse-event term, a landmark month, a subgroup comparison",
        stat_name="Statistic: n, pct (a percent, 0-100), median, ci_lower, ci_upper, events, hr, logrank_p and others",
        stat_label="The statistic's label for a reader",
        stat="The value, unrounded",
        quantity="Registry quantity (printed_values.csv) this row gives; empty for a statistic the paper never prints",
        basis="published_patient_data (Table 3's rows) or reconstructed_inputs (rests on values the paper does not print)",
        n="Number of patients the statistic counts",
        patients="Patient numbers counted, at most the first 500 (n counts them all)",
        source_file="Record file(s) the counted rows come from (the ADaM SRCFILE)",
        source_rows="Lines of that file the counted rows come from (the ADaM SRCROW; the header is line 1), at most the first 500",
    ),
    "cut_changes": _table(
        "earlier_cut later_cut kind item SUBJID earlier_value later_value change basis",
        earlier_cut="Data cut compared from",
        later_cut="The next data cut, compared with it",
        kind="patient, statistic, printed value or forecast",
        item="What changed: a patient and endpoint, an analysis_results statistic, a printed value, or the Discussion's forecast",
        SUBJID="Patient number of a patient's change; empty otherwise",
        earlier_value="Value at the earlier cut (a time in months for a patient, the statistic otherwise)",
        later_value="Value at the later cut",
        change="How it changed: a new event, longer follow-up, moved, a verdict's move (agrees to differs), the forecast's verdict",
        basis="published_patient_data or reconstructed_inputs, as in analysis_results and ADTTE AVALRFL",
    ),
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
