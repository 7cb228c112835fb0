"""Purpose policy (用证清单, SPEC 4.6): which service item may read which license, and what.

Each cross-provincial service item in the catalog names the license types it may read
and the only fields it may see. A verification names its purpose by the item's code;
without one, a verifier may see the union of what the catalog lets any item see of that
license type (the "catalog-disclosable" fields). The holder's consent in a 亮证码
(``sco``) narrows this further; ``identifier`` is always shown because it is the
license's public name and is already in the audit log's subject.

Consent entries are field names (``data.address``), groups (``holder``, ``data``:
every field under them) or ``*`` (everything disclosable): groups keep the QR code
small enough to scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.errors import ValidationFailed
from gateway.exchange.catalog import Catalog, ServiceItem
from gateway.licenses.document import LicenseDocument

__all__ = ["ALL_FIELDS", "PurposePolicy", "consents_to"]

ALL_FIELDS = "*"
"""Consent to every field the policy lets the verifier see."""


def consents_to(consent: Iterable[str], field: str) -> bool:
    """Whether a consent list covers ``field`` (exact name, a group above it, or ``*``)."""
    return any(entry in (ALL_FIELDS, field) or field.startswith(entry + ".") for entry in consent)


class PurposePolicy:
    """The catalog read as a purpose policy."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._by_type: dict[str, tuple[str, ...]] = {}
        for item in catalog.items.values():
            for type_code in item.license_types:
                known = self._by_type.get(type_code, ())
                extra = tuple(f for f in item.disclosed_fields if f not in known)
                self._by_type[type_code] = known + extra

    def item(self, code: str, *, field: str = "purpose") -> ServiceItem:
        """The service item ``code``, or ``ValidationFailed`` naming ``field``."""
        item = self._catalog.item(code)
        if item is None:
            reason = "not a service item of the catalog"
            raise ValidationFailed(f"{field}: {reason}", fields={field: reason})
        return item

    @staticmethod
    def allows(item: ServiceItem, type_code: str) -> bool:
        return type_code in item.license_types

    def disclosable_fields(self, type_code: str) -> tuple[str, ...]:
        """Every field some catalog item may see of this license type, in catalog order."""
        return self._by_type.get(type_code, ())

    def visible_fields(self, type_code: str, item: ServiceItem | None) -> tuple[str, ...]:
        """What a verifier may see for this purpose (nothing if the item may not read it)."""
        if item is None:
            return self.disclosable_fields(type_code)
        return item.disclosed_fields if self.allows(item, type_code) else ()

    def check_consent(self, type_code: str, consent: Iterable[str], *, field: str) -> None:
        """Refuse consent entries that name nothing disclosable for this license type."""
        fields = self.disclosable_fields(type_code)
        for entry in consent:
            if entry == ALL_FIELDS or any(consents_to((entry,), f) for f in fields):
                continue
            reason = f"{entry!r} is not a disclosable field or group of this license type"
            raise ValidationFailed(f"{field}: {reason}", fields={field: reason})

    def disclose(
        self, document: LicenseDocument, item: ServiceItem | None, consent: Iterable[str]
    ) -> dict[str, Any]:
        """The fields shown: visible for the purpose, consented by the holder, present."""
        consent = tuple(consent)
        everything = ALL_FIELDS in consent
        shown: dict[str, Any] = {"identifier": document.identifier}
        for name in self.visible_fields(document.type_code, item):
            if not everything and not consents_to(consent, name):
                continue
            present, value = document.field(name)
            if present:
                shown[name] = value
        return shown
