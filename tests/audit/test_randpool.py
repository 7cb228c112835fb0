"""The pooled random source behind audit salts (``gateway.randpool``).

It lives here because the audit store is its first user; the properties are general:
no byte is handed out twice (across sizes, refills, threads and a fork), and the token
helpers give the same forms as ``secrets``.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import threading
from collections.abc import Iterator

import pytest

from gateway import randpool
from gateway.randpool import RandomPool


@pytest.fixture
def counting_urandom(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """``os.urandom`` replaced by a source whose every 4-byte word is unique.

    Any slice handed out twice (or overlapping another) would then repeat a word.
    Returns the list of sizes requested from it.
    """
    counter = itertools.count()
    calls: list[int] = []

    def fake(n: int) -> bytes:
        calls.append(n)
        words = (n + 3) // 4
        return b"".join(next(counter).to_bytes(4, "big") for _ in range(words))[:n]

    monkeypatch.setattr(randpool.os, "urandom", fake)
    yield calls


def words(data: bytes) -> list[bytes]:
    return [data[i : i + 4] for i in range(0, len(data), 4)]


def test_slices_never_overlap_across_sizes_and_refills(counting_urandom: list[int]) -> None:
    pool = RandomPool(4096)
    seen: list[bytes] = []
    for n in [32] * 300 + [8] * 700 + [16, 32, 8, 64] * 100:
        value = pool.take(n)
        assert len(value) == n
        seen.extend(words(value))
    assert len(seen) == len(set(seen))
    # One system call per 4 KiB, not one per value.
    assert counting_urandom and set(counting_urandom) == {4096}
    assert len(counting_urandom) < 20


def test_sizes_that_are_not_pooled(counting_urandom: list[int]) -> None:
    pool = RandomPool(4096)
    assert pool.take(0) == b""
    assert len(pool.take(4096)) == 4096  # large: straight from os.urandom
    assert counting_urandom[-1] == 4096  # one call, of exactly the size asked for
    with pytest.raises(ValueError):
        pool.take(-1)
    with pytest.raises(ValueError):
        RandomPool(16)


def test_threads_never_get_the_same_slice(counting_urandom: list[int]) -> None:
    pool = RandomPool(256)  # small, so refills race too
    out: list[list[bytes]] = [[] for _ in range(8)]

    def work(k: int) -> None:
        for _ in range(3000):
            out[k].append(pool.take(32))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = [w for values in out for v in values for w in words(v)]
    assert len(seen) == 8 * 3000 * 8 == len(set(seen))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_does_not_repeat_its_parent() -> None:
    pool = RandomPool()
    pool.take(32)  # the parent's pool now holds bytes it has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next value and leave at once
        try:
            os.write(write, pool.take(32) + randpool.token_bytes(32))
        finally:
            os._exit(0)
    os.close(write)
    child = b""
    while len(child) < 64:
        chunk = os.read(read, 64)
        if not chunk:
            break
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 64
    assert child[:32] != pool.take(32)  # without the reset these would be equal
    assert child[32:] != randpool.token_bytes(32)


def test_token_forms_match_secrets() -> None:
    assert len(randpool.token_bytes()) == 32 and len(randpool.token_bytes(5)) == 5
    assert re.fullmatch(r"[0-9a-f]{16}", randpool.token_hex(8))
    text = randpool.token_urlsafe(8)
    assert re.fullmatch(r"[A-Za-z0-9_-]{11}", text)
    assert len(base64.urlsafe_b64decode(text + "=")) == 8
    assert len(randpool.token_urlsafe(32)) == 43
    values = {randpool.token_hex(16) for _ in range(1000)}
    assert len(values) == 1000
