"""Text from the data or the paper on its way into Dagster's Markdown, and back out to plain text.

Dagster renders asset and check descriptions and check results' descriptions as Markdown. Backslash-escaped, a
punctuation character is shown as itself (CommonMark): the UI then shows the text as stored instead of rendering
strikethrough ("14.2~32.7"), emphasis, links, images or HTML from it. Escapes cannot stop GitHub-flavoured
Markdown's autolinks, which Dagster's renderer finds however the text around them is escaped: a bare ``http://…``,
``www.…`` or ``name@host`` would become a link to a host the data names, with a stray backslash in its text. Such a
run is written as a code span instead, whose content Markdown shows exactly as written and never links. Logs and
failure lines are plain text, so they take the escaped text back with ``plain_text``.
"""

import re

_SPECIAL = re.compile(r"([\\`*_\[\]()<>|~&!#])")
# What GFM autolinks: a URL or www. address up to white space (or a table cell's "|"), and an e-mail address.
_AUTOLINK = re.compile(r"(?:https?://|www\.)[^\s|]*|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# An escaped character, or a code span: a run of backticks, its content, and a run of exactly as many.
_MARKDOWN = re.compile(r"\\([\\`*_\[\]()<>|~&!#])|(`+)(.*?)(?<!`)\2(?!`)")


def escape_markdown(text: str) -> str:
    """``text`` shown as itself wherever Dagster renders Markdown: every Markdown and HTML character backslash-escaped,
    each URL or e-mail address a code span, line breaks folded to spaces."""
    text = text.replace("\r", " ").replace("\n", " ")
    parts, end = [], 0
    for link in _AUTOLINK.finditer(text):
        parts += [_SPECIAL.sub(r"\\\1", text[end : link.start()]), _code_span(link.group())]
        end = link.end()
    return "".join([*parts, _SPECIAL.sub(r"\\\1", text[end:])])


def _code_span(text: str) -> str:
    """``text`` as a CommonMark code span: fenced by more backticks than it holds in a row, padded with a space
    where it starts or ends with one."""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _as_written(match: re.Match) -> str:
    if match.group(1) is not None:
        return match.group(1)
    content = match.group(3)
    # CommonMark strips one space from each side of a code span's content that has both (the padding above).
    return content[1:-1] if len(content) > 1 and content[0] == content[-1] == " " and content.strip() else content


def plain_text(markdown: str) -> str:
    """Text escaped by ``escape_markdown`` as plain text again, for a log line or a failure message."""
    return _MARKDOWN.sub(_as_written, markdown)
