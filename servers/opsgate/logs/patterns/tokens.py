"""How two tokens at the same position of a template compare.

Tokens come out of ``masking.mask``: masked parts read ``<*>``. Two different tokens are either
*compatible* (one is a wildcard pattern the other fits, e.g. ``chdir(<*>)`` and ``chdir(pwd)``),
*values* (at least one looks like data: only wildcards and punctuation, a path, an address), which
the miner may generalise to ``<*>``, or *conflicting words* (``Started`` and ``Paused``,
``user=root`` and ``user=guest``), which are strong evidence of two different events. A dotted
identifier (``com.example.jobs.SyncWorker``, ``rpc.statd``, ``mapred.task.id``) is a word: it names
a class, an action or a setting, and two of them are two events until a position has taken many of
them (then the miner's sibling rule makes it a variable, as for host names).
"""

from __future__ import annotations

import re
from functools import lru_cache

from opsgate.logs.patterns.masking import WILDCARD

_VALUE_LIKE = re.compile(r"[/\\@]")
_ALPHANUMERIC = re.compile(r"[^\W_]")
_WORD_CHAR = re.compile(r"\w")
_HOLE = "\x00"  # one character standing for a wildcard while two tokens are compared
_HOLES = re.compile(_HOLE + "+")


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
    """The most specific token covering two different tokens: what they share around the part that differs.

    The shared beginning is kept up to its last punctuation character and the shared end from its
    first one, so ``environment:java.home=<*>`` and ``environment:user.dir=/`` give
    ``environment:<*>`` and ``user=alice`` and ``user=bob`` give ``user=<*>``: literal words before a
    value are not lost. Tokens with nothing in common at a punctuation boundary give ``<*>``.
    """
    a, b = first.replace(WILDCARD, _HOLE), second.replace(WILDCARD, _HOLE)
    size = min(len(a), len(b))
    head = 0
    while head < size and a[head] == b[head]:
        head += 1
    while head and _WORD_CHAR.match(a[head - 1]):
        head -= 1
    tail = 0
    while tail < size - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    while tail and _WORD_CHAR.match(a[-tail]):
        tail -= 1
    if not head and not tail:
        return WILDCARD
    out = _HOLES.sub(WILDCARD, a[:head] + _HOLE + a[len(a) - tail :])
    return out
