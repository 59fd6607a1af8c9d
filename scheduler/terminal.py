"""What reaches the operator's terminal: job output and job-provided text (descriptions,
error text, ids quoted in messages) with control characters made visible, so a job cannot
set the window title, write the clipboard (OSC 52), move the cursor or hide text from the
operator. JSON output keeps every value exact; only its encoding escapes more.

Callers: ``cli`` (every text line it prints, and its JSON), ``logs`` (the daemon's log).
"""

from __future__ import annotations

import re

# C0 controls but newline and tab, DEL, C1 controls (0x9b is a one-byte CSI on some
# terminals), bidi overrides and isolates (text that reads differently than it is).
_TEXT_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
# In JSON text the C0 range is already escaped by ``json.dumps``; the rest is not.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN`` (``\\uNNNN``); line breaks
    and tabs stay, and a CRLF line end reads as a plain one."""
    return _TEXT_UNSAFE.sub(_visible, text.replace("\r\n", "\n"))


def safe_json(encoded: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with the characters a
    terminal acts on written as ``\\uNNNN`` escapes: it still decodes to the same values."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)
