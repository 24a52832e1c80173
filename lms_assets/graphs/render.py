"""Rendering Altair charts for the Dagster UI (PNG in markdown) and for people (standalone HTML)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc
from altair.utils._importers import vl_version_for_vl_convert
from altair.utils.html import INLINE_HTML_TEMPLATE, spec_to_html

from lms_assets.records.errors import reveal
from lms_assets.tables.printed import id_ranges


@dataclass(frozen=True)
class Chart:
    """A chart as its asset rendered it, once: what the report shows and the chart IO manager stores."""

    name: str  # the chart asset's name
    title: str
    description: str  # what it shows (the asset's description)
    data_cut: str  # which data cut(s) it draws, in words
    png: bytes
    html: str  # path of the standalone interactive HTML


# Larger axis and legend type, and legend labels never cut short ("…(publish…"), on every chart: merged into the spec's
# config, since Altair's ``configure_*`` copies the whole chart, data included, twice per chart.
LEGIBLE = {
    "axis": {"labelFontSize": 13, "titleFontSize": 14},
    "legend": {"labelFontSize": 13, "titleFontSize": 13, "labelLimit": 0, "symbolLimit": 0},
}


def chart_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec with its data inlined, as Altair's ``save`` builds it, and ``LEGIBLE`` type: built
    once per chart and handed to its check and to both renderers."""
    with alt.data_transformers.enable("default"), alt.data_transformers.disable_max_rows():
        spec = chart.to_dict(context={"pre_transform": False})
    config = spec.setdefault("config", {})
    for part, settings in LEGIBLE.items():
        config[part] = {**config.get(part, {}), **settings}
    return spec


def png_bytes(chart: alt.TopLevelMixin | dict[str, Any], scale: float = 1.0) -> bytes:
    """The chart (or its ``chart_spec``) as a PNG image, rendered offline by vl-convert."""
    return vlc.vegalite_to_png(chart if isinstance(chart, dict) else chart_spec(chart), scale=scale)


class ScriptSafeJSONEncoder(json.JSONEncoder):
    """JSON that can sit inside an HTML ``<script>`` block whatever its strings contain.

    Altair writes the chart's spec, data included, into ``<script>`` with plain ``json.dumps``; a data
    string holding ``</script>`` would end the block and the rest would run as script. ``<``, ``>`` and ``&``
    occur in JSON only inside strings, where their ``\\u`` escapes mean the same characters to JavaScript.
    """

    def encode(self, o: object) -> str:
        return "".join(self.iterencode(o, _one_shot=True))

    def iterencode(self, o: object, _one_shot: bool = False):
        for chunk in super().iterencode(o, _one_shot):
            yield chunk.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# Where ``save_html`` keeps vl-convert's bundle of Vega, Vega-Lite and vega-embed beside the pages: building it costs
# ~1.5 s, once per process, which every run paid on its first chart; the file, named by both versions, is read instead.
BUNDLE_FILE = ".vega-bundle-{vl_convert}-vl{vega_lite}.js"


def vega_bundle(folder: Path) -> str:
    """vl-convert's bundle of Vega, Vega-Lite and vega-embed for Altair's Vega-Lite version, as Altair's
    ``save(..., inline=True)`` inlines it: read from ``folder`` when a run built it before, else built and kept there."""
    vega_lite = vl_version_for_vl_convert()
    path = folder / BUNDLE_FILE.format(vl_convert=version("vl-convert-python"), vega_lite=vega_lite)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    # The stub types the snippet as required; like Altair, this uses the default one (vegaEmbed as a global).
    bundle = vlc.javascript_bundle(vl_version=vega_lite)  # type: ignore[call-arg]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(bundle, encoding="utf-8")
    tmp.replace(path)
    return bundle


@dataclass(frozen=True)
class _InlineTemplate:
    """Altair's inline HTML template with the bundle filled in, as Altair's ``save(..., inline=True)`` fills it (the
    page is the same byte for byte), for a spec built once."""

    bundle: str

    def render(self, **fields: Any) -> str:
        return INLINE_HTML_TEMPLATE.render(**fields, vegaembed_script=self.bundle)


def save_html(chart: alt.TopLevelMixin | dict[str, Any], path: Path) -> Path:
    """A standalone interactive HTML file of the chart (or its ``chart_spec``) with Vega inlined, so it opens
    without a network; data-borne text in the embedded spec is escaped so it cannot close the script block."""
    html = spec_to_html(
        chart if isinstance(chart, dict) else chart_spec(chart),
        mode="vega-lite",
        vega_version=alt.VEGA_VERSION,
        vegaembed_version=alt.VEGAEMBED_VERSION,
        vegalite_version=alt.VEGALITE_VERSION,
        json_kwds={"cls": ScriptSafeJSONEncoder},
        template=_InlineTemplate(vega_bundle(path.parent)),  # type: ignore[arg-type]  # any object with render(), as spec_to_html accepts
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def png_width(png: bytes) -> int:
    """The width in pixels a PNG's header gives."""
    return int.from_bytes(png[16:20], "big")


# The PNG the UI's dialog and the report show: about PNG_WIDTH pixels wide, its type legible at that size. Drawn at
# PNG_SCALE (each chart's natural width times it lands near PNG_WIDTH), and drawn again at the scale that gives
# PNG_WIDTH only where that misses by more than PNG_WIDTH_TOLERANCE (a chart whose width follows its data).
PNG_WIDTH = 1000
PNG_SCALE = 1.25
PNG_WIDTH_TOLERANCE = 0.1


def render_chart(chart: alt.TopLevelMixin | dict[str, Any], path: Path, width: int = PNG_WIDTH) -> tuple[bytes, Path]:
    """The chart's (or its ``chart_spec``'s) PNG, about ``width`` pixels wide, and its standalone HTML at ``path``, from one spec."""
    spec = chart if isinstance(chart, dict) else chart_spec(chart)
    png = png_bytes(spec, scale=PNG_SCALE)
    drawn = png_width(png)
    if abs(drawn - width) > PNG_WIDTH_TOLERANCE * width:
        png = png_bytes(spec, scale=PNG_SCALE * width / drawn)
    return png, save_html(spec, path)


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters, saying how long it was: one huge cell cannot flood a page or the event log."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… ({len(text):,} characters in all)"


def significant(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, halves rounded up on the decimal as printed (``repr``): 5.2375
    is 5.238 everywhere, not 5.237 because its binary double lies just below the half."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.{digits}g}"
    exact = Decimal(repr(value))
    rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), rounding=ROUND_HALF_UP)
    if -5 <= rounded.adjusted() < digits:
        return format(rounded.normalize(), "f")
    return f"{float(rounded):.{digits}g}"


def cell_text(value: object, max_items: int | None = None, max_chars: int | None = None) -> str:
    """A table cell for people: floats to 4 significant digits, lists of whole numbers (patient ids) as
    ranges, other lists joined (capped at ``max_items``), text shown through ``errors.reveal`` and clipped at
    ``max_chars``."""
    if value is None:
        return ""
    if isinstance(value, float):
        return significant(value)
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        text = id_ranges(value)
    elif isinstance(value, list):
        shown = value if max_items is None else value[:max_items]
        text = ", ".join(str(v) for v in shown)
        text += f", … ({len(value)} in all)" if len(shown) < len(value) else ""
    else:
        text = str(value)
    # Clipped first, so a huge cell costs nothing; then invisible, bidi and look-alike characters as code points: a
    # reader sees what is stored, not what it mimics.
    return reveal(text if max_chars is None else clip(text, max_chars))
