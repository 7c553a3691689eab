"""How an address reads on a screen: nothing that decided its fate may be invisible.

A trailing space or a no-break space is exactly what makes a contact's address
invalid (guide Step 4), and exactly what a terminal hides. Every place that
prints an address (the ``run`` table, expectation results, explanations) passes
it through :func:`visible`, so the same address always reads the same way.
"""

from __future__ import annotations

import unicodedata

SPACE_MARK = "\u2420"  # ␠ SYMBOL FOR SPACE
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def _escape(ch: str) -> str:
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def visible(text: str) -> str:
    """``text`` with every space shown as ``␠`` and every other invisible character as its escape.

    Ordinary printable characters (letters of any script included) are kept; a plain
    space becomes ``␠``; a no-break space, a tab, a zero-width or control character
    becomes ``\\xa0``, ``\\x09``, ``\\u200b``… A literal backslash stays as it is.
    """
    if text.isascii() and text.isprintable() and " " not in text:
        return text  # the common case, without a per-character pass
    out = []
    for ch in text:
        if ch == " ":
            out.append(SPACE_MARK)
        elif not ch.isprintable() or unicodedata.category(ch) in _HIDDEN_CATEGORIES:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)
