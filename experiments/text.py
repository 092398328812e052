"""Whether a Python string is Unicode text that every store and every JSON encoder keeps.

A JSON document may spell half of a UTF-16 surrogate pair alone (``"\\udfff"``); Python's parser
gives it back as a lone surrogate code point, which is no Unicode character: UTF-8 cannot encode it,
so no database stores it and no answer that holds it can be written.
"""

from __future__ import annotations

#: The reason given for a string holding a lone surrogate.
SURROGATE_REASON = "must be Unicode text: a lone UTF-16 surrogate (\\ud800 to \\udfff) is not a character"


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a code point of U+D800 to U+DFFF (always alone in a Python string).

    >>> has_lone_surrogate("caf\\u00e9 \\U0001F600"), has_lone_surrogate("\\udfff")
    (False, True)
    """
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
