"""The node's OpenAPI 3.1 document, assembled from what each API module declares.

Each handler module calls ``document(method, path, operation)`` next to its routes, so
the description lives beside the code it describes; a test checks that every served
route is documented and every documented route is served.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import error_codes

_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _problem_schema() -> dict[str, Any]:
    properties = dict(PROBLEM_SCHEMA["properties"])
    properties["code"] = {"type": "string", "enum": sorted(error_codes())}
    return {**PROBLEM_SCHEMA, "properties": properties}


def problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def json_body(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(method: str, path: str, operation: dict[str, Any]) -> None:
    """Declare one operation; ``path`` uses OpenAPI ``{param}`` syntax like aiohttp."""
    _OPERATIONS[(method.lower(), path)] = operation


def documented() -> set[tuple[str, str]]:
    return set(_OPERATIONS)


def openapi_document(node_id: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in sorted(_OPERATIONS.items()):
        op = dict(op)
        responses = dict(op.get("responses", {}))
        responses.setdefault("default", problem("An error (RFC 9457 problem+json)"))
        op["responses"] = responses
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"Tongban node {node_id}",
            "version": "1",
            "description": "Cross-provincial service interoperability gateway (跨省通办). "
            "Partner calls carry `Authorization: Bearer <request token>` (SPEC 2).",
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": _problem_schema()},
            "securitySchemes": {
                "requestToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWS"}
            },
        },
    }
