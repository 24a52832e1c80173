"""Configuration through resources: only the definitions entry point reads the environment, definitions built with
explicit locations read and write exactly there, and the study's identity comes from its study.toml."""

import ast
import dataclasses
import datetime as dt
import tomllib
from pathlib import Path

import duckdb
import pytest
from dagster import AssetSelection

from lms_assets.defs.resources import LOCATIONS, OutputsFolder, StudyFolder, locations
from lms_assets.records.declarations import Subgroup
from lms_assets.records.errors import RecordFileError
from lms_assets.records.study import ReportTable, Study, load_study
from lms_assets_tests.conftest import REPO, SHIPPED_DATA, defs_for, run_assets, run_selection, start_from_shipped_run

PACKAGE = REPO / "lms_assets"
# Entry points, not asset code: the definitions read the three locations once at load; the deployment and
# recovery CLIs read DAGSTER_HOME and the PostgreSQL settings in their main; the launcher hands its environment to `dagster dev`;
# a team server's study location reads LMS_STUDY_DIRS when it loads.
MAY_READ_ENVIRONMENT = {"definitions.py", "infra/deploy.py", "infra/recovery.py", "infra/launcher.py", "infra/studies.py"}


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that touch ``os.environ`` or call ``os.getenv`` (also as ``from os import environ/getenv``)."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "getenv", "environb"}
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & {"environ", "getenv", "environb"}:
            lines.append(node.lineno)
    return lines


def test_no_module_but_the_entry_points_reads_the_environment():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in MAY_READ_ENVIRONMENT:
            continue
        lines = _environment_reads(ast.parse(path.read_text(), filename=str(path)))
        if lines:
            offenders[relative] = lines
    assert not offenders, f"environment read outside the entry points (pass a resource instead): {offenders}"


def test_the_scan_finds_each_way_of_reading_the_environment():
    for source in ("import os\nos.environ['X']", "import os\nos.getenv('X')", "from os import environ", "from os import getenv as g"):
        assert _environment_reads(ast.parse(source)), source
    assert not _environment_reads(ast.parse("import os\nos.path.join('a', 'b')"))


def test_locations_default_as_documented_and_follow_the_environment():
    assert locations({}) == {"study_dir": Path("data"), "warehouse": Path("data/warehouse/lms.duckdb"), "outputs": Path("outputs")}
    env = {variable: f"/srv/{name}" for name, (variable, _) in LOCATIONS.items()}
    assert locations(env) == {name: Path(f"/srv/{name}") for name in LOCATIONS}
    assert {variable for variable, _ in LOCATIONS.values()} == {"LMS_DATA_DIR", "LMS_DUCKDB_PATH", "LMS_OUTPUT_DIR"}


def test_definitions_carry_the_locations_they_are_built_with(tmp_path: Path):
    paths = {"data": SHIPPED_DATA, "warehouse": tmp_path / "w" / "lms.duckdb", "outputs": tmp_path / "out"}
    resources = defs_for(paths).resources
    assert resources["study_folder"] == StudyFolder(path=str(SHIPPED_DATA))
    assert resources["outputs_folder"] == OutputsFolder(path=str(tmp_path / "out"))
    assert resources["io_manager"].database == str(tmp_path / "w" / "lms.duckdb")


def test_definitions_built_with_explicit_locations_read_and_write_only_there(shipped_run, platform_env, tmp_path: Path):
    """The report reads the study copy (its title, from study.toml), stores in the given warehouse and writes under the
    given outputs folder; the default locations relative to the working directory are not touched. It starts from
    the published state of the session's shipped run, less the tables and files this run must write again."""
    start_from_shipped_run(shipped_run, platform_env)
    with duckdb.connect(str(platform_env["warehouse"])) as con:
        con.execute("DROP TABLE adsl")
    for written in ("report/study_report.html", "charts/history_chart.html"):
        (platform_env["outputs"] / written).unlink()
    study = platform_env["data"]
    (study / "study.toml").write_text((study / "study.toml").read_text().replace('title = "Anlotinib', 'title = "Copied study: Anlotinib'))
    selection = AssetSelection.assets("adsl").upstream() | AssetSelection.assets("study_report", "history_chart")
    # Run from an empty folder: anything written to the defaults (data/, outputs/) would appear here.
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)
        result = run_selection(selection, platform_env)
    assert result.success
    assert not list(elsewhere.iterdir())
    report = (platform_env["outputs"] / "report" / "study_report.html").read_text()
    assert "Copied study: Anlotinib in advanced leiomyosarcoma (real-world study): recomputation and audit" in report
    assert (platform_env["outputs"] / "charts" / "history_chart.html").is_file()
    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as con:
        assert con.sql("select distinct STUDYID from adsl").fetchall() == [("ZOU-LMS-ANLOTINIB",)]


def test_the_study_id_of_every_adam_row_comes_from_study_toml(platform_env):
    toml = platform_env["data"] / "study.toml"
    toml.write_text(toml.read_text().replace('studyid = "ZOU-LMS-ANLOTINIB"', 'studyid = "NEW-STUDY_2"'))
    assert run_assets("adsl", "adae", paths=platform_env).success
    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as con:
        for table in ("adsl", "adae"):
            assert con.sql(f"select distinct STUDYID from {table}").fetchall() == [("NEW-STUDY_2",)], table
        assert con.sql("select USUBJID from adsl order by SUBJID limit 1").fetchone() == ("NEW-STUDY_2-1",)


def test_a_bad_study_toml_fails_the_cohort_naming_file_key_and_value(platform_env):
    from lms_assets_tests.records.test_validation import failure_message

    toml = platform_env["data"] / "study.toml"
    toml.write_text(toml.read_text().replace("enrolment_end = 2020-12-31", "enrolment_end = 2020-13-31"))
    result = run_assets("adsl", paths=platform_env)
    assert not result.success
    assert "study.toml: is not valid TOML" in failure_message(result)


# --- the Study object ---------------------------------------------------------------------------------------


def test_the_shipped_study_file_says_what_the_paper_does():
    assert load_study(SHIPPED_DATA) == Study(
        studyid="ZOU-LMS-ANLOTINIB",
        title="Anlotinib in advanced leiomyosarcoma (real-world study)",
        enrolment_start=dt.date(2018, 1, 1),
        enrolment_end=dt.date(2020, 12, 31),
        exclude_quarantined_rows=False,
        report_tables=(
            ReportTable("Table 1. Patient demographics and clinical characteristics", "Table 1", ("baseline_summary",)),
            ReportTable("Table 2. Overall response to treatment", "Table 2", ("response_summary", "survival_summary")),
            ReportTable("Table 4. Adverse events (each patient once per term, at the worst grade)", "Table 4", ("ae_summary",)),
        ),
        survival_rows=(("pfs", "Median PFS, months (95% CI, SPSS method)"), ("os", "Median OS, months (95% CI, SPSS method)")),
        treatment_code="ANLOTINIB",
        vocabulary={
            "patients": {"combination_therapy": ("None", "Immunotherapy", "Chemotherapy", "Radiotherapy", "Immunotherapy+Chemotherapy")},
            "allocations": {"primary_site": ("Retroperitoneal", "Extremities", "Pelvis", "Uterus", "Lung")},
            "adverse_events": {
                "term": (
                    *("ALT elevation", "Anemia", "Constipation", "Diarrhea", "Fatigue", "Hand foot skin syndrome", "Hypertension"),
                    *("Hypoproteinemia", "Insomnia", "Local Pain", "Nausea/vomiting", "Oral ulcers"),
                )
            },
        },
        sex_restricted_sites={"Uterus": "F"},
        subgroups=(
            Subgroup("Sex", "SEX", "F", "M", "Female", "Male"),
            Subgroup("ECOG", "ECOGGR1", "0-1", ">=2", "ECOG 0–1", "ECOG ≥2"),
            Subgroup("Combination therapy", "COMBFL", "N", "Y", "Monotherapy", "Combination"),
            Subgroup("Prior chemotherapy", "PRCHFL", "N", "Y", "None", "Any"),
            Subgroup("Prior surgery", "SURGFL", "N", "Y", "No", "Yes"),
            Subgroup("Prior radiotherapy", "RADIOFL", "N", "Y", "No", "Yes"),
            Subgroup("Primary site", "PRIMSITE", "Retroperitoneal", "Extremities", "Retroperitoneal", "Extremities"),
        ),
    )


def test_every_value_in_the_shipped_study_file_says_where_it_comes_from():
    """The data/ provenance rule: each key (or table of keys) sits in a paragraph (lines between blank ones) that
    opens with a comment, and the file sets every field of the Study."""
    text = (SHIPPED_DATA / "study.toml").read_text()
    for paragraph in text.split("\n\n"):
        lines = paragraph.strip().splitlines()
        settings = [line for line in lines if not line.startswith("#")]
        assert not settings or lines[0].startswith("#"), f"study.toml: {settings} without a comment saying where it comes from"
    assert set(tomllib.loads(text)) == {field.name for field in dataclasses.fields(Study)}


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ('title = "Anlotinib in advanced leiomyosarcoma (real-world study)"', "title = 7", "study.toml: title = 7 must be a non-empty quoted string"),
        (
            'title = "Anlotinib in advanced leiomyosarcoma (real-world study)"',
            'title = " "',
            "study.toml: title = ' ' must be a non-empty quoted string",
        ),
        ('title = "Anlotinib in advanced leiomyosarcoma (real-world study)"', 'title = "a\\nb"', "must be one printable line"),
        ('studyid = "ZOU-LMS-ANLOTINIB"', 'studyid = "ZOU/LMS"', "study.toml: studyid = 'ZOU/LMS' must be 1-40 letters, digits"),
        (
            "enrolment_start = 2018-01-01",
            "enrolment_start = 2018-01-01T08:00:00",
            "study.toml: enrolment_start = 2018-01-01T08:00:00 must be a TOML date",
        ),
        ("enrolment_end = 2020-12-31", "enrolment_end = 2017-06-30", "study.toml: enrolment_end = 2017-06-30 is before enrolment_start = 2018-01-01"),
        ("enrolment_end = 2020-12-31", "", "study.toml: missing enrolment_end"),
        (
            'heading = "Table 1. Patient demographics and clinical characteristics"',
            "heading = 1",
            "study.toml: report_tables[1].heading = 1 must be a non-empty quoted string",
        ),
        ('owners = ["ae_summary"]', "owners = []", "study.toml: report_tables[3].owners = [] must be a non-empty array of table names"),
        (
            'source = "Table 2"',
            'sources = "Table 2"',
            "study.toml: report_tables[2]: unknown key(s) sources; missing source; each entry has heading, source, owners",
        ),
        (
            'owners = ["ae_summary"]',
            'owners = "ae_summary"',
            "study.toml: report_tables[3].owners = 'ae_summary' must be a non-empty array of table names",
        ),
        ('pfs = "Median PFS, months (95% CI, SPSS method)"', "pfs = 4.1", "study.toml: survival_rows.pfs = 4.1 must be a non-empty quoted string"),
        (
            'os = "Median OS, months (95% CI, SPSS method)"',
            'os = "Median\\tOS"',
            "study.toml: survival_rows.os = 'Median\\tOS' must be one printable line",
        ),
        ('treatment_code = "ANLOTINIB"', 'treatment_code = "Anlotinib"', "study.toml: treatment_code = 'Anlotinib' must be upper case"),
        ('Uterus = "Female"', 'Uterus = "female"', "study.toml: sex_restricted_sites.Uterus = 'female' must be one of Female, Male"),
        (
            'Uterus = "Female"',
            'Ovary = "Female"',
            "study.toml: sex_restricted_sites.Ovary is not a primary site of vocabulary.allocations.primary_site",
        ),
        ('"Oral ulcers",\n]', '"Oral ulcers",\n "Fatigue",\n]', "study.toml: vocabulary.adverse_events.term = ['Fatigue'] are listed twice"),
        ('combination_therapy = ["None", ', "combination_therapy = [", "study.toml: vocabulary.patients.combination_therapy = ["),
        ("[vocabulary.allocations]", "[vocabulary.allocation]", "study.toml: vocabulary.allocation is not a record file with declared values"),
        ('column = "SURGFL"', 'column = "AGE"', "study.toml: subgroups[5].column = 'AGE' must be an ADSL variable a subgroup may split"),
        ('level = "Extremities"', 'level = "Retroperitoneal"', "study.toml: subgroups[7].level = 'Retroperitoneal' is its reference too"),
        ('reference = "Retroperitoneal"', 'reference = "Pelvic"', "study.toml: subgroups[7].reference = 'Pelvic' is not a primary site"),
        ('level_label = "Any"', 'level_label = ""', "study.toml: subgroups[4].level_label = '' must be a quoted, printable line"),
    ],
    ids=[
        "title-number",
        "title-blank",
        "title-two-lines",
        "studyid-slash",
        "start-an-instant",
        "window-reversed",
        "end-missing",
        "heading-number",
        "owners-empty",
        "table-key-misspelt",
        "owners-a-string",
        "label-number",
        "label-with-a-tab",
        "treatment-code-lower-case",
        "restricted-sex-unknown",
        "restricted-site-undeclared",
        "term-twice",
        "combination-without-none",
        "vocabulary-file-misspelt",
        "subgroup-column-not-a-factor",
        "subgroup-one-level",
        "subgroup-site-undeclared",
        "subgroup-label-empty",
    ],
)
def test_a_bad_study_value_is_refused_naming_file_key_and_value(study_dir: Path, old: str, new: str, says: str):
    toml = study_dir / "study.toml"
    text = toml.read_text()
    assert text.count(old) == 1
    toml.write_text(text.replace(old, new))
    with pytest.raises(RecordFileError) as refused:
        load_study(study_dir)
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ('report_tables = "Table 1"', "study.toml: report_tables must be an array of tables, each written [[report_tables]]"),
        ('survival_rows = ["pfs"]', 'study.toml: survival_rows must be a table of key = "label" lines, written [survival_rows]'),
    ],
    ids=["tables-a-string", "rows-an-array"],
)
def test_report_layouts_of_the_wrong_shape_are_refused_naming_the_key(tmp_path: Path, setting: str, says: str):
    (tmp_path / "study.toml").write_text(f'studyid = "S"\ntitle = "T"\nenrolment_start = 2018-01-01\nenrolment_end = 2018-12-31\n{setting}\n')
    with pytest.raises(RecordFileError) as refused:
        load_study(tmp_path)
    assert str(refused.value) == says


def test_a_study_without_report_layouts_has_no_report_tables(tmp_path: Path):
    (tmp_path / "study.toml").write_text('studyid = "S"\ntitle = "T"\nenrolment_start = 2018-01-01\nenrolment_end = 2018-12-31\n')
    study = load_study(tmp_path)
    assert (study.report_tables, study.survival_rows) == ((), ())


def test_a_synthetic_study_lays_its_report_out_as_the_shipped_one(tmp_path: Path):
    from lms_assets import synthetic

    (tmp_path / "study.toml").write_text(synthetic.study_toml(60, seed=5))
    study, shipped = load_study(tmp_path), load_study(SHIPPED_DATA)
    assert (study.report_tables, study.survival_rows) == (shipped.report_tables, shipped.survival_rows)
