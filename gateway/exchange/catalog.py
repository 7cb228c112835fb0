"""The service catalog (SPEC 5) and the license types it refers to.

The same file drives three things: what ``GET /v1/catalog`` answers, the purpose policy
(用证清单, SPEC 4.6) the license verifier applies, and the time limits of the 三单一函
escalation ladder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError


@dataclass(frozen=True)
class LicenseType:
    code: str
    name: str
    name_en: str


@dataclass(frozen=True)
class ServiceItem:
    """One cross-provincial service item and what it may read."""

    code: str
    name: str
    name_en: str
    handling_node: str
    license_types: tuple[str, ...]
    disclosed_fields: tuple[str, ...]
    time_limit_days: int

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "name_en": self.name_en,
            "handling_node": self.handling_node,
            "license_types": list(self.license_types),
            "disclosed_fields": list(self.disclosed_fields),
            "time_limit_days": self.time_limit_days,
        }


@dataclass(frozen=True)
class Catalog:
    license_types: dict[str, LicenseType]
    items: dict[str, ServiceItem]

    def item(self, code: str) -> ServiceItem | None:
        return self.items.get(code)

    def handled_by(self, node_id: str) -> list[ServiceItem]:
        return [i for i in self.items.values() if i.handling_node == node_id]

    def type_name(self, code: str) -> str:
        t = self.license_types.get(code)
        return t.name if t else code


def _str(file: Path, key: str, table: dict[str, Any], name: str) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(str(file), f"{key}.{name}", "missing or not a string")
    return value


def _strs(file: Path, key: str, table: dict[str, Any], name: str) -> tuple[str, ...]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(str(file), f"{key}.{name}", "expected a list of strings")
    return tuple(value)


def load_catalog(path: Path) -> Catalog:
    """Load ``catalog.toml``; raises ``ConfigError`` naming the item and key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "-", "catalog file does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "-", f"not valid TOML ({exc})") from exc
    types: dict[str, LicenseType] = {}
    for i, t in enumerate(raw.get("license_types", [])):
        key = f"license_types[{i}]"
        code = _str(path, key, t, "code")
        if code in types:
            raise ConfigError(str(path), f"{key}.code", f"license type {code} listed twice")
        types[code] = LicenseType(code, _str(path, key, t, "name"), t.get("name_en", ""))
    items: dict[str, ServiceItem] = {}
    for i, t in enumerate(raw.get("items", [])):
        key = f"items[{i}]"
        code = _str(path, key, t, "code")
        if code in items:
            raise ConfigError(str(path), f"{key}.code", f"item {code} listed twice")
        lt = _strs(path, key, t, "license_types")
        for c in lt:
            if c not in types:
                raise ConfigError(str(path), f"{key}.license_types", f"unknown license type {c}")
        limit = t.get("time_limit_days")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(str(path), f"{key}.time_limit_days", "expected a positive integer")
        items[code] = ServiceItem(
            code=code,
            name=_str(path, key, t, "name"),
            name_en=t.get("name_en", ""),
            handling_node=_str(path, key, t, "handling_node"),
            license_types=lt,
            disclosed_fields=_strs(path, key, t, "disclosed_fields"),
            time_limit_days=limit,
        )
    return Catalog(license_types=types, items=items)
