"""Text from the data or the paper on its way into Dagster's Markdown, and back out to plain text.

Dagster renders asset and check descriptions and check results' descriptions as Markdown. Backslash-escaped, a
punctuation character is shown as itself (CommonMark): the UI then shows the text as stored instead of rendering
strikethrough ("14.2~32.7"), emphasis, links, images or HTML from it. Escapes cannot stop GitHub-flavoured
Markdown's autolinks, which Dagster's renderer finds however the text around them is escaped: a bare ``http://…``,
``www.…`` or ``name@host`` becomes a link (one that went to a host named by the data, with a stray backslash in its
text). A word joiner (U+2060: no width, nothing shown) inside each such opening keeps it text. Logs and failure lines
are plain text, so they take the escaped text back with ``plain_text``.
"""

import re

_SPECIAL = re.compile(r"([\\`*_\[\]()<>|~&!#])")
_ESCAPED = re.compile(r"\\([\\`*_\[\]()<>|~&!#])")
WORD_JOINER = "\u2060"
# Where an autolink would start: the "://" of a URL, the "." after "www", an e-mail address's "@".
_AUTOLINK = re.compile(r"(?=://|@)|(?<=www)(?=\.)", re.IGNORECASE)
_JOINED = re.compile(WORD_JOINER + r"(?=://|@)|(?<=www)" + WORD_JOINER + r"(?=\.)", re.IGNORECASE)


def escape_markdown(text: str) -> str:
    """``text`` shown as itself wherever Dagster renders Markdown: every Markdown and HTML character backslash-escaped,
    no URL or e-mail address made a link, line breaks folded to spaces."""
    return _AUTOLINK.sub(WORD_JOINER, _SPECIAL.sub(r"\\\1", text)).replace("\r", " ").replace("\n", " ")


def plain_text(markdown: str) -> str:
    """Text escaped by ``escape_markdown`` as plain text again, for a log line or a failure message."""
    return _ESCAPED.sub(r"\1", _JOINED.sub("", markdown))
