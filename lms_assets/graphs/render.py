"""Rendering Altair charts for the Dagster UI (PNG in markdown) and for people (standalone HTML)."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import altair as alt
import vl_convert as vlc

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


def png_bytes(chart: alt.TopLevelMixin, scale: float = 1.0) -> bytes:
    """The chart as a PNG image, rendered offline by vl-convert."""
    return vlc.vegalite_to_png(chart.to_json(), scale=scale)


def markdown_image(png: bytes, alt_text: str) -> str:
    """Markdown that shows a PNG inline in Dagster's metadata panel (the quickstart pattern)."""
    return f"![{alt_text}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


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


def save_html(chart: alt.TopLevelMixin, path: Path) -> Path:
    """A standalone interactive HTML file with Vega inlined, so it opens without a network; data-borne text
    in the embedded spec is escaped so it cannot close the script block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    chart.save(str(tmp), format="html", inline=True, json_kwds={"cls": ScriptSafeJSONEncoder})
    tmp.replace(path)
    return path


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
    ranges, other lists joined (capped at ``max_items``), text clipped at ``max_chars``."""
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
    return text if max_chars is None else clip(text, max_chars)
