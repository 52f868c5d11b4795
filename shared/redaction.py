"""Redaction before storage: e-mail addresses, phone numbers and long digit runs (account, card or order
numbers) in what customers type are replaced by placeholders before an interaction is kept.

It is a best effort on free text, tuned to keep what reports need (the question's words, product
versions, dates, error codes) and to drop what identifies a person or an account. See SECURITY.md.
"""

from __future__ import annotations

import re

EMAIL = "[email]"
PHONE = "[phone]"
NUMBER = "[number]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
#: ISO dates and times, dotted versions and IPv4-like dotted numbers are kept as they are.
_KEEP = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b|\b\d+(?:\.\d+){1,3}\b")
#: A phone number: an optional +country code, then 7-15 digits in groups split by spaces, dots, dashes
#: or parentheses (at least one separator or a leading +, so a plain digit run is left to _DIGITS).
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w])"
)
#: Six or more digits in a row, possibly in groups of digits split by single spaces or dashes (cards).
_DIGITS = re.compile(r"(?<!\w)\d(?:[ -]?\d){5,}(?!\w)")


def _count_digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def redact(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers and runs of 6+ digits replaced by placeholders."""
    if not text:
        return text
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    out = _EMAIL.sub(EMAIL, text)
    out = _KEEP.sub(keep, out)
    out = _PHONE.sub(lambda m: PHONE if 7 <= _count_digits(m.group(0)) <= 15 else m.group(0), out)
    out = _DIGITS.sub(NUMBER, out)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], out)
