"""How two tokens at the same position of a template compare.

Tokens come out of ``masking.mask``: masked parts read ``<*>``. Two different tokens are either
*compatible* (one is a wildcard pattern the other fits, e.g. ``chdir(<*>)`` and ``chdir(pwd)``),
*values* (at least one looks like data: only wildcards and punctuation, a path, a dotted name, an
address), which the miner may generalise to ``<*>``, or *conflicting words* (``Started`` and
``Paused``, ``user=root`` and ``user=guest``), which are strong evidence of two different events.
"""

from __future__ import annotations

import re
from functools import lru_cache

from opsgate.logs.patterns.masking import WILDCARD

_VALUE_LIKE = re.compile(r"[/\\@]|\w\.\w")
_ALPHANUMERIC = re.compile(r"[^\W_]")


def is_variable(token: str) -> bool:
    """True for tokens made only of ``<*>`` and punctuation, e.g. ``<*>``, ``<*>,`` or ``<*>:<*>``."""
    return WILDCARD in token and _ALPHANUMERIC.search(token) is None


def is_value(token: str) -> bool:
    """True when the token looks like data rather than a word of the message."""
    return is_variable(token) or _VALUE_LIKE.search(token) is not None


@lru_cache(maxsize=4096)
def _pattern(token: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in token.split(WILDCARD)), re.DOTALL)


def fits(token: str, pattern_token: str) -> bool:
    """True when ``token`` is an instance of ``pattern_token``, a token partly made of ``<*>``.

    A bare ``<*>`` is no pattern here: the miner handles it as a generalised position.
    """
    return (
        pattern_token != WILDCARD and WILDCARD in pattern_token and _pattern(pattern_token).fullmatch(token) is not None
    )


def generalize(first: str, second: str) -> str:
    """The most specific token covering two different value tokens: a shared ``key=`` survives."""
    cut = first.find("=") + 1
    if cut > 0 and first[:cut] == second[:cut] and cut < len(first) and cut < len(second):
        return first[:cut] + WILDCARD
    return WILDCARD
