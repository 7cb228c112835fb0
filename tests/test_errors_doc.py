"""docs/errors.md lists every stable error code the code can raise, with its status."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import adapters
import gateway
from gateway.errors import error_codes

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _import_everything() -> None:
    for package in (gateway, adapters):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def test_every_error_code_is_documented_with_its_status() -> None:
    _import_everything()
    documented = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\| `([a-z_]+)` \| (\d{3}) \|", DOC.read_text(), re.MULTILINE)
    }
    codes = error_codes()
    assert len(codes) > 30
    assert {c: codes[c] for c in codes} == {c: documented.get(c) for c in codes}
    assert set(documented) <= set(codes), "documented codes that nothing raises"
