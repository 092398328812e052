"""Decision ids: version-7 UUIDs (RFC 9562), time-ordered so that a send's decisions follow one another
in the primary-key index."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import numpy as np

_EPOCH = datetime(1970, 1, 1)
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def new_decision_ids(n: int, moment: datetime) -> list[str]:
    """``n`` version-7 UUIDs as strings: the decision time, then 74 random bits.

    ``moment`` (naive UTC) gives the first 48 bits, in milliseconds since 1970; the random bits come
    from one read of ``os.urandom`` and are sorted within the batch, so a send's decisions land next to
    one another in the primary-key index instead of on random pages of it. A few ids are written in
    plain Python, many at once with numpy.
    """
    millis = max(0, (moment - _EPOCH) // timedelta(milliseconds=1)) & (2**48 - 1)
    prefix = millis.to_bytes(6, "big")
    if n <= 64:
        random = os.urandom(10 * n)
        raws = sorted(
            prefix + bytes(((r[0] & 0x0F) | 0x70, r[1], (r[2] & 0x3F) | 0x80)) + r[3:]
            for r in (random[k : k + 10] for k in range(0, 10 * n, 10))
        )
        out = []
        for raw in raws:
            h = raw.hex()
            out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
        return out
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, :6] = np.frombuffer(prefix, dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70  # version 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 9562 variant
    high = raw[:, 6:8].copy().view(">u2").ravel()
    low = raw[:, 8:16].copy().view(">u8").ravel()
    raw = raw[np.lexsort((low, high))]
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX_DIGITS[raw >> 4]
    digits[:, 1::2] = _HEX_DIGITS[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + stop - start] = digits[:, start:stop]
    joined = text.tobytes().decode("ascii")
    return [joined[k : k + 36] for k in range(0, 36 * n, 36)]
