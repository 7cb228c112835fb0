"""Benchmarks that measure Tongban against this machine's own limits (issue 7).

Each ``bench/<name>.py`` runs with ``.venv/bin/python -m bench.<name> --seconds N``,
prints its figures as it goes and, as its last line, one JSON object (throughput,
p50_ms, p95_ms, p99_ms, limit, ratio, ...). Raw results go to ``bench/results/``
(git-ignored). ``docs/performance.md`` records the machine, the commands and the
figures. Benchmarks never run in the test suite: no timed assertion lives in tests/.
"""
