"""What a chart states in words, read from its Vega-Lite spec (``render.chart_spec``): titles, subtitles, axis and
legend titles, and the text of its text marks; and the numbers in them (pure).

A chart's blocking check compares these numbers with numbers formatted from the cells of the tables the chart
draws. The expected numbers are built from the tables, not from the chart's own text, so a regression in the code
that writes a title cannot pass by agreeing with itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

# A date, a count with thousands separators, or a plain number; signs and % are not part of the number.
# A count a chart abbreviates (``compact_count``: 20k, 1.2M) is one token with its suffix.
NUMBER = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[kM](?![A-Za-z]))?")


def _title_texts(title: Any) -> Iterator[str]:
    """A ``title`` entry's text and subtitle lines (a string, a list of lines, or a TitleParams dict)."""
    if isinstance(title, str):
        yield title
    elif isinstance(title, list):
        yield from (line for line in title if isinstance(line, str))
    elif isinstance(title, dict):
        for key in ("text", "subtitle"):
            yield from _title_texts(title.get(key))


def _walk(node: Any, data: Any, datasets: dict[str, list[dict]]) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, data, datasets)
        return
    if not isinstance(node, dict):
        return
    data = node.get("data", data)
    mark = node.get("mark")
    if (mark == "text" or (isinstance(mark, dict) and mark.get("type") == "text")) and isinstance(node.get("encoding"), dict):
        text = node["encoding"].get("text", {})
        if "value" in text:
            yield str(text["value"])
        elif "field" in text and isinstance(data, dict):
            rows = datasets.get(data.get("name", ""), data.get("values")) or []
            yield from (str(row[text["field"]]) for row in rows if row.get(text["field"]) is not None)
    for key, value in node.items():
        if key == "title":
            yield from _title_texts(value)
        # A tooltip's field titles are read on hover, over the data itself; the data's own cells are not stated text.
        elif key not in ("tooltip", "datasets", "data"):
            yield from _walk(value, data, datasets)


def texts(spec: dict[str, Any]) -> list[str]:
    """Every title, subtitle line, axis and legend title, and text-mark label the chart shows."""
    return list(_walk(spec, None, spec.get("datasets", {})))


def numbers(lines: Iterable[str]) -> list[str]:
    """The number tokens of ``lines`` as written (``1,250``, ``4.1``, ``2021-03-31``, ``20k``)."""
    return [token for line in lines for token in NUMBER.findall(line)]


def unexplained(spec: dict[str, Any], expected: Iterable[str]) -> list[str]:
    """The numbers the chart states that are none of ``expected`` (numbers formatted from its tables' cells and the
    constants its fixed wording names), each once, in the order shown."""
    allowed = set(expected)
    return list(dict.fromkeys(n for n in numbers(texts(spec)) if n not in allowed))


def count_texts(values: Iterable[int | None]) -> set[str]:
    """Counts as a chart may print them: plain and with thousands separators."""
    return {text for v in values if v is not None for text in (str(v), f"{v:,}")}
