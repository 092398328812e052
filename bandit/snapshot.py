"""The snapshot format shared by every policy: a header line, then JSON with a type tag.

``b"sendlab-policy/1\\n" + JSON({"type": tag, "state": {...}})``. Small arrays (per-arm counts) are
stored as lists with their dtype (Python's JSON writes floats with ``repr``, so they round-trip bit
for bit); large ones (the Gram matrices of the linear policies) as base64 of their little-endian
bytes; bytes (VW's model) as base64. Readable where it matters, compact, and free of pickle.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from bandit.policy import PolicyError

HEADER = b"sendlab-policy/1\n"
LIST_LIMIT = 256  # arrays with more elements are stored as base64 bytes


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.size > LIST_LIMIT:
            little = value.astype(value.dtype.newbyteorder("<"), copy=False)
            data = base64.b64encode(np.ascontiguousarray(little).tobytes()).decode("ascii")
            return {"__raw__": data, "dtype": little.dtype.str, "shape": list(value.shape)}
        return {"__array__": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            return np.array(value["__array__"], dtype=value["dtype"]).reshape(value["shape"])
        if "__raw__" in value:
            raw = base64.b64decode(value["__raw__"])
            return np.frombuffer(raw, dtype=value["dtype"]).reshape(value["shape"]).astype(
                np.dtype(value["dtype"]).newbyteorder("="))
        if "__bytes__" in value:
            return base64.b64decode(value["__bytes__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def encode_snapshot(tag: str, state: dict[str, Any]) -> bytes:
    """Serialise a policy's ``state`` under its type ``tag``."""
    return HEADER + json.dumps({"type": tag, "state": _encode(state)}, sort_keys=True).encode("utf-8")


def decode_snapshot(data: bytes) -> tuple[str, dict[str, Any]]:
    """The ``(tag, state)`` stored by :func:`encode_snapshot`; PolicyError if it is not a snapshot."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PolicyError(f"snapshot: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(HEADER):
        raise PolicyError("snapshot: not a SendLab policy snapshot (missing 'sendlab-policy/1' header)")
    try:
        document = json.loads(data[len(HEADER):].decode("utf-8"))
        tag, state = document["type"], document["state"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyError(f"snapshot: corrupt body ({exc})") from None
    return str(tag), _decode(state)


class Restorable:
    """Mixin giving a policy class ``from_bytes``; the class supplies ``tag`` and ``from_state``."""

    tag: str = ""

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """Restore a snapshot of this class (``bandit.load_policy`` restores any class)."""
        tag, state = decode_snapshot(data)
        if tag != cls.tag:
            raise PolicyError(f"snapshot: holds a {tag!r} policy, not {cls.tag!r}")
        return cls.from_state(state)
