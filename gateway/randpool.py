"""Pooled secure random bytes: one ``os.urandom`` call per 4 KiB, handed out in slices.

Why: the hot paths draw a few random bytes per call (the audit payload salt, request
ids, replay-claim owners). ``secrets.token_bytes`` makes one ``getrandom`` system call
per value, and CPython releases and re-takes the GIL around it, so under load every
value also costs a hand-over of the GIL to whichever thread wants it. A pool makes one
call per ``size`` bytes and slices it.

Guarantees:

* the bytes come from ``os.urandom`` (the kernel CSPRNG), exactly as ``secrets`` does;
* no byte is handed out twice, also between threads (see ``RandomPool``); a refill
  replaces the buffer, and a tail too short for a slice is dropped, never reused;
* fork-safe: a child process starts with empty pools (``os.register_at_fork``), so a
  parent and its child never hand out the same bytes. A ``fork()`` that bypasses
  ``os.fork`` (a C extension forking and then running Python) is not seen; no code
  in this project does that.

Not for long-term keys: unused pool bytes stay in memory until handed out, so a memory
disclosure would reveal the next values. Salts, nonces and identifiers are fine; keys
should still come from ``os.urandom`` (or ``secrets``) directly.

The module-level ``token_bytes``, ``token_hex`` and ``token_urlsafe`` are drop-in
replacements for the ``secrets`` functions of the same names (same output forms),
backed by one pool per process.
"""

from __future__ import annotations

import binascii
import os
import weakref
from collections.abc import Iterator
from itertools import count
from typing import Final

__all__ = ["DEFAULT_POOL_SIZE", "RandomPool", "token_bytes", "token_hex", "token_urlsafe"]

DEFAULT_POOL_SIZE: Final = 4096


class RandomPool:
    """Buffers of ``os.urandom`` bytes handed out in never-overlapping slices.

    One buffer per slice length ``n``; slot ``i`` of a buffer is ``buf[i*n:(i+1)*n]``
    and ``i`` comes from the buffer's own ``itertools.count``. ``next()`` on a count is
    one C call, atomic under the GIL, so two threads never get the same slot without a
    lock (a ``threading.Lock`` costs more than the slice here; a free-threaded CPython
    build would need one). Two threads that refill at once each take slot 0 of their
    *own* new buffer and one buffer is kept: still no slot is handed out twice.
    """

    __slots__ = ("__weakref__", "_size", "_states")

    def __init__(self, size: int = DEFAULT_POOL_SIZE) -> None:
        if size < 64:
            raise ValueError("a random pool must hold at least 64 bytes")
        self._size = size
        self._states: dict[int, tuple[bytes, Iterator[int]]] = {}
        _POOLS.add(self)

    def take(self, n: int) -> bytes:
        """``n`` fresh random bytes, never handed out before by this or any process."""
        state = self._states.get(n)
        if state is not None:
            buf, slots = state
            end = (next(slots) + 1) * n
            if end <= len(buf):
                return buf[end - n : end]
        if not 0 < n <= self._size // 8:
            if n < 0:
                raise ValueError("the number of random bytes must not be negative")
            return os.urandom(n)  # nothing to pool: empty, or large enough to amortise
        buf = os.urandom(self._size)
        self._states[n] = (buf, count(1))
        return buf[:n]

    def _reset(self) -> None:
        """In a forked child: forget every byte the parent may also hand out."""
        self._states = {}


_POOLS: weakref.WeakSet[RandomPool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)

_default = RandomPool()


def token_bytes(nbytes: int = 32) -> bytes:
    """Like ``secrets.token_bytes``, from the process's pool."""
    return _default.take(nbytes)


def token_hex(nbytes: int = 32) -> str:
    """Like ``secrets.token_hex``: ``nbytes`` random bytes as lowercase hex."""
    return _default.take(nbytes).hex()


def token_urlsafe(nbytes: int = 32) -> str:
    """Like ``secrets.token_urlsafe``: ``nbytes`` random bytes as unpadded base64url."""
    raw = binascii.b2a_base64(_default.take(nbytes), newline=False)
    return raw.rstrip(b"=").translate(_URLSAFE).decode("ascii")


_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
