"""Text from the data or the paper on its way into Dagster's Markdown, and back out to plain text.

Dagster renders asset and check descriptions and check results' descriptions as Markdown. Backslash-escaped, a
punctuation character is shown as itself (CommonMark): the UI then shows the text as stored instead of rendering
strikethrough ("14.2~32.7"), emphasis, links, images or HTML from it. Logs and failure lines are plain text, so
they take the escaped text back with ``plain_text``.
"""

import re

_SPECIAL = re.compile(r"([\\`*_\[\]()<>|~&!#])")
_ESCAPED = re.compile(r"\\([\\`*_\[\]()<>|~&!#])")


def escape_markdown(text: str) -> str:
    """``text`` shown as itself wherever Dagster renders Markdown: every Markdown and HTML character backslash-escaped,
    line breaks folded to spaces."""
    return _SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def plain_text(markdown: str) -> str:
    """Text escaped by ``escape_markdown`` as plain text again, for a log line or a failure message."""
    return _ESCAPED.sub(r"\1", markdown)
