"""Pre-signing request tokens for the load generator, before any clock starts.

Each call of the benchmarks needs its own token (a ``jti`` is accepted once), and an
ES256 signature costs tens of microseconds: signing inside the generator would make
it the bottleneck. Tokens are signed here, in parallel, and written one per line.
Their lifetime is the SPEC's maximum (300 s), so sign each batch right before use.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gateway.config import load_node_config
from gateway.keys import load_token_key
from gateway.tokens.mint import MAX_LIFETIME, mint_request_token

_CHUNK = 2000


def _mint(args: tuple[str, int, str, str, str, str, bytes]) -> list[str]:
    config, count, iss, aud, method, path_qs, body = args
    key = load_token_key(load_node_config(config))
    return [
        mint_request_token(
            key, iss=iss, aud=aud, method=method, path_qs=path_qs, body=body,
            lifetime=MAX_LIFETIME,
        )
        for _ in range(count)
    ]  # fmt: skip


def presign(
    out: Path,
    *,
    signer_config: Path,
    count: int,
    iss: str,
    aud: str,
    method: str,
    path_qs: str,
    body: bytes,
) -> Path:
    """Write ``count`` fresh tokens of ``iss`` (whose config is ``signer_config``) to ``out``."""
    jobs = []
    left = count
    while left > 0:
        n = min(_CHUNK, left)
        jobs.append((str(signer_config), n, iss, aud, method, path_qs, body))
        left -= n
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        tokens = [t for batch in pool.map(_mint, jobs) for t in batch]
    out.write_text("\n".join(tokens) + "\n", encoding="ascii")
    return out
