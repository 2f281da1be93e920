"""Turning a log message into text whose variable-looking parts are masked as ``<*>``.

Masking is generic; nothing here knows about a particular system's log format. Masked, each as one
``<*>``: any run of characters between delimiters that holds a digit (numbers, hex ids, IPs, UUIDs,
versions, times, block ids) unless it is a word with a digit inside (``HTTP2``, ``TLSv13``,
``eth1``), with a size or duration unit that follows it ("16.0 KB" is one value);
MAC-style hex bytes; URLs; e-mail addresses; weekday and month names inside dates ("Sun Jul 10").
The delimiters (``=``, ``:``, ``,``, brackets, quotes, ...) stay, so ``uid=0`` keeps its key: ``uid=<*>``.

It runs in two steps so that the per-line cost stays low: ``mask_digits`` (one cheap regex, run on
every line) and ``refine`` (the rarer patterns, run on its output). ``refine`` only depends on the
output of ``mask_digits``, so a miner can cache its work keyed by that output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

WILDCARD = "<*>"

_D = r"\s=,:;()\[\]{}\"'<>|"  # delimiters between value chunks
_START = rf"(?<![^{_D}])"  # right after a delimiter or at the start
_END = rf"(?![^{_D}])"  # right before a delimiter or at the end
_W = r"<\*>"

# A word with a digit inside it names a thing rather than holding a value: protocol, interface,
# algorithm and format names such as HTTP2, TLSv13, IPv6, eth1, sha256, utf8, ext4. Its shape: at
# least two letters, one of them not a hex digit (else it is an id like "cafe42"), then one to three
# digits, then optionally lower-case letters ("log4j"). Such a word stays literal; when it does vary
# a lot at one position the miner turns that position into a variable like any other word.
_DIGIT_WORD = r"(?=[A-Za-z]{2})[A-Fa-f]*+[G-Zg-z][A-Za-z]*+\d{1,3}[a-z]*+"

# Possessive quantifiers keep this linear: a word without a digit is given up after one scan.
_WITH_DIGIT = re.compile(rf"{_START}(?!{_DIGIT_WORD}{_END})[^{_D}\d]*+\d[^{_D}]*+")
# The same where a run of two or more dots ("loop...", "instruction......0") is punctuation between
# chunks, not part of a value (a single dot joins a value: "4771.02", "10.0.0.1"). Slower, so only
# used on messages that hold such a run.
_CHUNK = rf"(?:[^{_D}.]|(?<!\.)\.(?!\.))"
_CHUNK_END = rf"(?![^{_D}.]|\.(?!\.))"
_WITH_DIGIT_DOTS = re.compile(
    rf"(?:(?<![^{_D}])|(?<=\.\.))(?!{_DIGIT_WORD}{_CHUNK_END})(?:(?!\d){_CHUNK})*+\d{_CHUNK}*+"
)

_HEX_BYTE = rf"(?:[0-9A-Fa-f]{{2}}|{_W})"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?,?"

_URL = re.compile(rf"{_START}[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s\"'<>]|{_W})*")
_EMAIL = re.compile(rf"{_START}[\w.+-]+@[\w-]+(?:\.[\w-]+)+{_END}")
_HEX_BYTES = re.compile(rf"{_START}{_HEX_BYTE}(?:[:-]{_HEX_BYTE}){{3,}}{_END}")  # MAC addresses and the like
_UNIT = re.compile(rf"{_W}\s(?:[KMGTPE]i?B|B|ns|us|µs|ms|s){_END}")  # a number with its unit
_DATE_WORDS = re.compile(  # weekday and month names in dates, i.e. followed by a number
    rf"{_START}(?=[A-Z][a-z])(?:(?:{_WEEKDAY}\s+)?{_MONTH}|{_WEEKDAY})(?=\s+{_W})"
)

_mask_chunks: Callable[[str], str] = partial(_WITH_DIGIT.sub, WILDCARD)
_mask_dotted_chunks: Callable[[str], str] = partial(_WITH_DIGIT_DOTS.sub, WILDCARD)


def mask_digits(message: str) -> str:
    """The message with each delimiter-bounded chunk that holds a digit replaced by ``<*>``.

    Words with a digit inside (``HTTP2``, ``eth1``) are kept; see ``_DIGIT_WORD``.
    """
    return _mask_dotted_chunks(message) if ".." in message else _mask_chunks(message)


def refine(masked: str) -> str:
    """Mask URLs, e-mail addresses, hex bytes, units and date words in ``mask_digits`` output."""
    # One pattern at a time, each only when a cheap test says it can match.
    if "://" in masked:
        masked = _URL.sub(WILDCARD, masked)
    if "@" in masked:
        masked = _EMAIL.sub(WILDCARD, masked)
    if ":" in masked or "-" in masked:
        masked = _HEX_BYTES.sub(WILDCARD, masked)
    if WILDCARD in masked:
        masked = _UNIT.sub(WILDCARD, masked)
        masked = _DATE_WORDS.sub(WILDCARD, masked)
    return masked


def mask(message: str) -> str:
    """The message with every variable-looking part replaced by ``<*>``."""
    return refine(mask_digits(message))
