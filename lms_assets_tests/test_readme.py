"""Every command README.md gives a reader is run by CI: `.ci/run` runs the two set-up commands' checks, and each
other command is run here or by the test named beside it, so a README command nothing runs fails this file."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from lms_assets_tests.conftest import REPO

README = REPO / "README.md"
# Each README command, and what runs it as written (the file that runs it).
RUN_BY = {
    "make test": ".ci/run",
    "make lint": ".ci/run",
    # The launcher line `make -n run` prints is the one it starts and stops (test_launcher's `make_run_command`).
    "make run": "lms_assets_tests/infra/test_launcher.py",
    "make materialize": "lms_assets_tests/test_second_study.py",
    ".venv/bin/python -c \"import duckdb; print(duckdb.connect('data/warehouse/lms.duckdb', read_only=True).sql('select * from adsl'))\"": (
        "lms_assets_tests/test_readme.py"
    ),
}


def readme_commands() -> set[str]:
    """The lines of the README's shell blocks and its inline code that start with `make` or `.venv/bin/`."""
    text = README.read_text()
    fenced = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    lines = {line.split("#")[0].strip() for block in fenced for line in block.splitlines()}
    inline = re.findall(r"`(make \w[\w-]*|\.venv/bin/\S+ [^`]*)`", text)
    return (lines | set(inline)) - {""}


def test_every_readme_command_is_run_by_ci():
    assert readme_commands() == set(RUN_BY), "a README command without a test that runs it, or a stale entry here"
    for command, runner in RUN_BY.items():
        text = (REPO / runner).read_text()
        if runner == ".ci/run":
            assert command in text.splitlines(), f"{runner} does not run {command!r}"
        elif command.startswith("make "):
            # As the argument list a test hands to subprocess, not a mention in its prose.
            assert ", ".join(f'"{word}"' for word in command.split()) in text, f"{runner} does not run {command!r}"


def test_the_readme_query_of_the_warehouse_prints_adsl(shipped_cohort: dict, tmp_path: Path):
    """Run as written from a folder laid out like the repository (the warehouse where the README says)."""
    command = next(c for c in RUN_BY if c.startswith(".venv/bin/python"))
    warehouse = tmp_path / "data" / "warehouse" / "lms.duckdb"
    warehouse.parent.mkdir(parents=True)
    shutil.copyfile(shipped_cohort["warehouse"], warehouse)
    # The environment the tests run in is the repository's .venv (make test).
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    shown = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "USUBJID" in shown and "19 rows" in shown, shown
