"""Group ``charts``: Altair values as PNG in the UI and interactive HTML in the outputs folder.

Every chart of a run is drawn in one step (``charts``, a subsettable multi-asset): the renderer starts once, each
table is read once, and only the columns the selected charts draw. Each chart stays its own asset with its own
description, metadata and blocking ``numbers_match_tables`` check, and a selection of one chart draws that one only.
Each returns its rendered chart (``render.Chart``: PNG bytes, title, description, data cut, HTML path), stored by
``ChartIOManager`` as files in the outputs folder; the report takes them as inputs.
"""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    ConfigurableIOManager,
    Failure,
    InputContext,
    MetadataValue,
    Output,
    OutputContext,
    ResourceParam,
)

from lms_assets.defs.chart_catalogue import CHART_ASSETS, ChartAsset, Drawn
from lms_assets.defs.constants import CHARTS, OWNERS
from lms_assets.defs.markdown import escape_markdown, plain_text
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import OutputsFolder, StudyFolder, WarehouseTables
from lms_assets.defs.steps import layer, table_key
from lms_assets.graphs import render, stated

CHART_IO_MANAGER = "chart_io_manager"


class ChartIOManager(ConfigurableIOManager):
    """A chart asset's ``render.Chart`` as two files a reader can open in ``base_dir``: ``<name>.png`` and
    ``<name>.json`` (title, description, data cut, HTML path and the PNG's SHA-256). Not the warehouse: a chart
    is an image, not a table."""

    base_dir: str

    def _paths(self, context: InputContext | OutputContext) -> tuple[Path, Path]:
        base = Path(self.base_dir) / context.asset_key.path[-1]
        return base.with_suffix(".png"), base.with_suffix(".json")

    def handle_output(self, context: OutputContext, obj: render.Chart) -> None:
        png, about = self._paths(context)
        png.parent.mkdir(parents=True, exist_ok=True)
        fields = {
            "name": obj.name,
            "title": obj.title,
            "description": obj.description,
            "data_cut": obj.data_cut,
            "html": obj.html,
            "png_sha256": hashlib.sha256(obj.png).hexdigest(),
        }
        # Each file replaced whole, the PNG first: the JSON written last names the PNG it belongs to.
        for path, data in ((png, obj.png), (about, json.dumps(fields, indent=1).encode())):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

    def load_input(self, context: InputContext) -> render.Chart:
        png, about = self._paths(context)
        if not about.is_file() or not png.is_file():
            raise Failure(description=f"{about.stem}: no stored chart in {png.parent}; materialize the chart asset first")
        fields = json.loads(about.read_text(encoding="utf-8"))
        data = png.read_bytes()
        if hashlib.sha256(data).hexdigest() != fields.pop("png_sha256"):
            raise Failure(description=f"{png} is not the PNG {about.name} describes (rewritten since); materialize {about.stem} again")
        return render.Chart(**fields, png=data)


# In the order the report shows them.
CHART_NAMES = tuple(c.name for c in CHART_ASSETS)


# Every chart's blocking check: what it states in words is what its tables hold.
NUMBERS_MATCH = "numbers_match_tables"
# The failure's description quotes this many mismatches; the check's metadata lists them all.
QUOTED_MISMATCHES = 3


def check_result(name: str, drawn: Drawn, spec: dict[str, Any]) -> AssetCheckResult:
    """The chart's ``numbers_match_tables`` result: its own mismatches, then every stated number in no table cell."""
    problems = [*drawn.mismatches(spec), *(f"{n} is in no table cell" for n in stated.unexplained(spec, drawn.expected))]
    shown = "; ".join(problems[:QUOTED_MISMATCHES]) + (f"; and {len(problems) - QUOTED_MISMATCHES} more" if len(problems) > QUOTED_MISMATCHES else "")
    return AssetCheckResult(
        asset_key=AssetKey(name),
        check_name=NUMBERS_MATCH,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=escape_markdown(shown) if problems else "Every stated number is a table cell, and every plotted value its table's.",
        metadata={"mismatches": MetadataValue.json(problems)},
    )


def chart_output(chart: ChartAsset, spec: dict[str, Any], drawn: Drawn, outputs: OutputsFolder, description: str) -> Output[render.Chart]:
    """A chart asset's output: the chart rendered once, to its interactive page in the outputs folder and to a PNG
    about ``render.PNG_WIDTH`` pixels wide, returned in a ``render.Chart`` for the chart IO manager and the report. In
    the UI its first entry links to the served page and its second to the PNG."""
    relative = f"charts/{chart.name}.html"
    png, html_path = render.render_chart(spec, outputs.root / relative)
    digest = hashlib.sha256(png).hexdigest()[:12]
    value = render.Chart(chart.name, chart.title, description, drawn.data_cut, png, str(html_path.resolve()))
    return Output(
        value,
        output_name=chart.name,
        metadata={
            "chart page": MetadataValue.url(outputs.url(relative)),
            # The PNG the chart IO manager stores beside the page, served from there (a link, not the bytes, keeps the
            # event log small; Dagster would draw a short Markdown image inline, wider than the page's column); the
            # digest names this materialization's picture, so a later one is told apart.
            "picture": MetadataValue.url(f"{outputs.url(f'charts/{chart.name}.png')}?sha256={digest}"),
            "data_cut": MetadataValue.text(drawn.data_cut),
            **drawn.metadata,
        },
    )


def read_tables(warehouse: WarehouseTables, charts: list[ChartAsset]) -> dict[str, pl.DataFrame]:
    """Each table the ``charts`` draw, read once with the columns any of them draws; ``Failure`` naming a table
    that was never published."""
    columns: dict[str, list[str]] = {}
    for chart in charts:
        for table, names in chart.reads.items():
            columns.setdefault(table, [])
            columns[table] += [n for n in names if n not in columns[table]]
    tables = {}
    for table, wanted in columns.items():
        try:
            tables[table] = warehouse.read_columns(table, wanted)
        except duckdb.CatalogException as error:
            readers = ", ".join(c.name for c in charts if table in c.reads)
            raise Failure(description=f"{readers}: {table} is not in the warehouse; materialize {table} first") from error
    return tables


SPECS = [
    AssetSpec(
        c.name,
        description=c.description,
        deps=list(c.reads),
        group_name=CHARTS,
        kinds={"altair"},
        owners=OWNERS,
    )
    for c in CHART_ASSETS
]


@layer(
    SPECS,
    io_manager_key=CHART_IO_MANAGER,
    name="charts",
    check_specs=[
        AssetCheckSpec(
            NUMBERS_MATCH,
            asset=c.name,
            blocking=True,
            description="Every number in the chart's titles, captions and labels is a cell of the tables it draws, and "
            "every value it plots is its table's.",
        )
        for c in CHART_ASSETS
    ],
)
def charts(
    context: AssetExecutionContext, outputs_folder: OutputsFolder, io_manager: ResourceParam[WarehouseTables], study_folder: StudyFolder
) -> Iterator:
    """The selected charts, each checked, then rendered and stored unless its check failed; the step fails after
    the others are stored, naming each chart not published (its stored files stay as they were)."""
    selected = [c for c in CHART_ASSETS if table_key(context, c.name) in context.selected_asset_keys]
    tables = read_tables(io_manager, selected)
    study = study_of(study_folder)
    blocking = {spec.asset_key for spec in context.assets_def.check_specs if spec.blocking}
    failed: list[tuple[str, str]] = []
    for chart in selected:
        key = table_key(context, chart.name)
        drawn = chart.draw(tables, study)
        spec = render.chart_spec(drawn.chart)
        result = check_result(chart.name, drawn, spec)._replace(asset_key=key)
        report = context.assets_def.metadata_by_key.get(key, {}).get("report")
        yield result.with_metadata({**result.metadata, "report": report}) if report is not None else result
        if not result.passed and key in blocking:
            failed.append((chart.name, f"{chart.name} not published: {NUMBERS_MATCH}: {result.description}"))
            context.log.error(plain_text(failed[-1][1]))
            continue
        yield chart_output(chart, spec, drawn, outputs_folder, context.assets_def.descriptions_by_key.get(key, ""))
    if failed:
        raise Failure(
            description="\n".join([*(line for _, line in failed), "The stored chart keeps its last good content."]),
            metadata={"failed_checks": ", ".join(f"{name}:{NUMBERS_MATCH}" for name, _ in failed)},
        )
