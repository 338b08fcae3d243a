"""LaTeX markup in titles and abstracts turned into readable text: the one normaliser.

``{\\"u}`` -> ü, ``\\emph{x}`` -> x, ``$\\alpha$`` -> α, ``\\mathcal{O}`` -> 𝒪, ````quotes''`` ->
“quotes”, ``--`` -> –, ``~`` -> a space, group braces dropped. Built on pylatexenc's
``LatexNodes2Text``, with three changes measured on the shipped corpus's ``\\emph`` and ``^{``
lines: a multi-character super/subscript keeps its grouping as parentheses (``T^{1/3}`` ->
``T^(1/3)``, not ``T^1/3``), a bare ``%`` is a percent sign rather than a comment that would eat
the rest of the line, and citation commands vanish (they point into a bibliography nobody here
has). The result is whitespace-collapsed; plain text passes through unchanged.

Invariant: never raises on any string (pylatexenc parses tolerantly). The corpus stores titles and
abstracts in this display form, so answers, summaries and exports carry no markup; a query holding
markup goes through :func:`search_text` first, so search finds a paper by either form.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

# "^{1/3}", "_{d_y}": a group of two or more characters without nested braces.
_GROUPED_SCRIPT = re.compile(r"([\^_])\{([^{}]{2,})\}")
_BARE_PERCENT = re.compile(r"(?<!\\)%")
_MARKUP = re.compile(r"[\\{}$~%`'^_-]")  # text without these has nothing to convert
# Of the text _MARKUP lets through, only text with one of these does pylatexenc change: a lone "-",
# "'", "^" or "_" (in nearly every abstract) comes out unchanged, and pylatexenc costs about 9 ms an
# abstract (200 s of reading a 45,000-paper library's sources). Checked on every title and abstract
# of the shipped corpus and every eval question: of the 2,330 texts _MARKUP sent to pylatexenc, the
# 2,077 this one passes by come out the same either way ("&" is dropped by pylatexenc, so it stays in).
_CHANGED = re.compile(r"[\\{}$~%`&#]|--|''")
_CITATION_MACROS = ("cite", "citep", "citet", "citealp", "ref", "eqref", "label", "footnote")


@lru_cache(maxsize=1)
def _converter() -> LatexNodes2Text:
    context = get_default_latex_context_db().filter_context()
    context.add_context_category(
        "paperbot-drop", prepend=True, macros=[MacroTextSpec(name, simplify_repl="") for name in _CITATION_MACROS]
    )
    return LatexNodes2Text(latex_context=context, math_mode="text", strict_latex_spaces=False)


# Markup a user might type into a search ("KD^{3}", "\\emph{x}", "$\\alpha$", ``quotes''): only then is a
# query converted, so ordinary questions ("O(n^2)", "50% less") reach the retrievers untouched.
_QUERY_MARKUP = re.compile(r"\\[a-zA-Z]+|[\^_]\{|\$[^$]+\$|``|\{\\")


def search_text(query: str) -> str:
    """``query`` as the index holds text (display form): LaTeX markup made plain, anything else unchanged."""
    return latex_to_text(query) if _QUERY_MARKUP.search(query) else query


# The conversion's identity: a remembered conversion is reused only under the same rules and pylatexenc.
# Bump when the rules above change.
CONVERSION_RULES = 1
_memo: dict[str, str] = {}  # markup text -> display text, for this process
_used: set[str] = set()


def conversion_version() -> str:
    from pylatexenc import version

    return f"{CONVERSION_RULES}-{version.version_str}"


def latex_to_text(text: str) -> str:
    """Readable text for ``text``, which may hold LaTeX markup."""
    if not _MARKUP.search(text) or not _CHANGED.search(text):
        return " ".join(text.split())
    done = _memo.get(text)
    if done is None:
        done = _memo[text] = convert_markup(text)
    _used.add(text)
    return done


def convert_markup(text: str) -> str:
    """``text`` through pylatexenc with this module's rules, always (:func:`latex_to_text` skips plain text)."""
    prepared = _BARE_PERCENT.sub(r"\\%", _GROUPED_SCRIPT.sub(r"\1{(\2)}", text))
    return " ".join(_converter().latex_to_text(prepared).split())


def remember(conversions: dict[str, str]) -> None:
    """Reuse earlier conversions (made by :func:`conversion_version`'s rules) instead of parsing again.

    An index run keeps the conversions of its sources with the index
    (bot.derived) and hands them to the next run: pylatexenc costs about 9 ms an
    abstract with markup, 26 s of reading a 45,000-paper library's sources.
    """
    _memo.update(conversions)


def conversions() -> dict[str, str]:
    """The conversions this process has used (to hand to :func:`remember` in a later run)."""
    return {text: _memo[text] for text in _used}
