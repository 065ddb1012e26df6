"""Text normalisation and character bigrams for Chinese search (no database here).

Chinese has no spaces between words, and the queries users type are mostly two to four
characters (户籍, 社保, 婚姻登记). Every two adjacent characters of a field are indexed; a
query is found through its rarest bigram and confirmed by a substring match.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def normalise(text: str) -> str:
    """Full-width to half-width (NFKC) and lower case, so that ＡＢＣ, Abc and abc match."""
    return unicodedata.normalize("NFKC", text).lower()


def gram_code(pair: str) -> int:
    """A two-character string as one integer (each code point fits in 21 bits)."""
    return (ord(pair[0]) << 21) | ord(pair[1])


def bigrams(text: str) -> set[int]:
    """The distinct bigrams of already normalised text, never spanning whitespace."""
    grams: set[int] = set()
    for word in text.split():
        for i in range(len(word) - 1):
            grams.add(gram_code(word[i : i + 2]))
    return grams


def query_terms(query: str) -> list[str]:
    """The terms of a query: normalised, split on whitespace, duplicates dropped."""
    seen: list[str] = []
    for term in normalise(query).split():
        if term not in seen:
            seen.append(term)
    return seen


def join_fields(fields: Iterable[str]) -> str:
    """One normalised text of several fields, separated so that no match spans two of them."""
    return "\n".join(normalise(f) for f in fields if f)
