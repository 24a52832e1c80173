"""A record file that cannot be used (``RecordFileError``), and file content made safe to quote in a message.

Every echo of file content in a message goes through ``excerpt``, so no message carries more than a short, printable
piece of what a file holds, and nothing in it can hide or disguise what it says (``reveal``).
"""

from __future__ import annotations

import re
import unicodedata

EXCERPT_CHARS = 60
# Characters that hide or disguise text where it is shown: controls, format characters (zero-width, bidi
# overrides), line and paragraph separators, spaces other than the plain one, private-use, surrogate, unassigned.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cs", "Cn"})
# A run of letters: a word, as far as confusables go.
_WORD = re.compile(r"[^\W\d_]+")


class RecordFileError(ValueError):
    """A record file cannot be used at all; the message names the file and what is wrong."""


def _escaped(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def _unmask_word(word: re.Match[str]) -> str:
    """A word with Latin letters keeps them; any letter of another script in it (Cyrillic е, Greek ο) is escaped."""
    text = word.group()
    if text.isascii() or not any(c.isascii() for c in text):
        return text
    return "".join(c if c.isascii() or unicodedata.name(c, "").startswith("LATIN ") else _escaped(c) for c in text)


def reveal(text: str) -> str:
    """``text`` with every character that could hide or disguise what it says written as its code point (``\\u0435``).

    Control, invisible and bidirectional-override characters, spaces other than the plain space, and letters of
    another script inside a word of Latin letters ("F\\u0435male", with a Cyrillic е, is not "Female"). Accented
    Latin letters and words wholly in another script are shown as they are. Messages (``excerpt``) and previews
    show data through it.
    """
    text = _WORD.sub(_unmask_word, text)
    return "".join(_escaped(c) if c != " " and unicodedata.category(c) in _HIDDEN_CATEGORIES else c for c in text)


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """``text`` safe to put in a message: shown through ``reveal``, cut to ``limit``."""
    text = str(text)
    shown = reveal(text[: limit * 2])
    if len(shown) > limit or len(text) > limit * 2:
        return f"{shown[:limit]}… ({len(text):,} characters)"
    return shown
