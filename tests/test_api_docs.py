"""The OpenAPI document (/docs) explains every operation and field a firm's developer meets."""

from __future__ import annotations

from typing import Any

from starter.api.app import create_app
from tests.helpers import test_settings

OPENAPI = create_app(test_settings()).openapi()
SCHEMAS: dict[str, Any] = OPENAPI["components"]["schemas"]


def _explained(prop: dict[str, Any]) -> bool:
    """A property says what it is, or refers to a schema that does (an enum's values, a model)."""
    if prop.get("description"):
        return True
    refs = [prop, *prop.get("anyOf", []), *prop.get("allOf", []), prop.get("items", {})]
    return any("$ref" in ref and SCHEMAS[ref["$ref"].rsplit("/", 1)[-1]].get("description") for ref in refs)


def test_every_public_operation_says_what_it_does():
    bare = [
        f"{method.upper()} {path}"
        for path, operations in OPENAPI["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
        if not operation.get("description")
    ]
    assert bare == []


def test_every_field_and_parameter_of_the_public_api_is_explained():
    public = {
        ref.rsplit("/", 1)[-1]
        for path, operations in OPENAPI["paths"].items()
        if path.startswith("/v1/")
        for ref in _refs(operations)
    }
    while True:  # and the schemas those refer to, all the way down
        deeper = public | {ref for name in public for ref in _refs(SCHEMAS[name])}
        if deeper == public:
            break
        public = deeper
    assert {"DossierOut", "MandateSummary", "Verification", "Problem", "FieldError"} <= public
    unexplained = [
        f"{name}.{field}"
        for name in sorted(public)
        for field, prop in SCHEMAS[name].get("properties", {}).items()
        if not _explained(prop)
    ]
    parameters = [
        f"{path} ?{parameter['name']}"
        for path, operations in OPENAPI["paths"].items()
        if path.startswith("/v1/")
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and not parameter.get("description")
    ]
    assert unexplained == [] and parameters == []


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_list_pages_as_the_contract_says():
    """api.md: lists are cursor-paginated, `?limit=` 50 by default and 500 at most."""
    limits = {
        path: next(p["schema"] for p in operation["parameters"] if p["name"] == "limit")
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if method == "get" and any(p["name"] == "limit" for p in operation.get("parameters", []))
    }
    assert {"/v1/dossiers", "/v1/bulk-sends", "/v1/dossiers/{dossier_id}/mandates"} <= set(limits)
    assert {path: (schema["default"], schema["maximum"]) for path, schema in limits.items()} == {
        path: (50, 500) for path in limits
    }
