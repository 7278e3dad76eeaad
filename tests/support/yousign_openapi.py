"""Validate YouSign v3 HTTP requests against YouSign's own OpenAPI document.

The YouSign client and the YouSign emulator are written in this repository, so they could drift
*together* away from the real API. Every request the client sends (as recorded by the emulator)
is checked here against ``yousign-public-api-v3-openapi.yml`` (YouSign's OpenAPI 3.0 document):

    api = YousignOpenApi.load(default_spec_path())
    api.validate(recorded_request)  # raises ContractViolation (an AssertionError)

A request is any object with ``method``, ``path`` (full URL path, ``/v3/...``), ``query`` (raw
query string), ``headers`` (mapping) and ``body`` (bytes) attributes.

What is checked: the ``/v3`` server prefix, path template and method, path parameters (UUIDs),
query parameters (form style, ``deepObject`` filters such as ``external_id[eq]``, the operators
each filter's description allows, unknown parameters), the ``Authorization: Bearer`` header
(global ``bearerAuth`` security), the Content-Type against the operation's request media types,
and the JSON, ``multipart/form-data`` or form body against the request schema (``oneOf`` /
``anyOf`` variants, ``additionalProperties: false``, enums, formats, patterns, ``nullable``).

Why not openapi-core (measured with 0.23.1 on this document): it rejects *every* valid
``POST /signature_requests`` body (``CreateSignatureRequest`` is ``additionalProperties: false`` +
``oneOf`` with no ``properties`` of its own, which strict JSON Schema reads as "no property
allowed"), it decodes the ``anyOf`` multipart body of ``POST /verifications/identity_documents``
to ``{}``, its ``oneOf`` errors only say "not valid under any of the given schemas", and building
it takes ~2.3 s (on top of the YAML parse). So this module does the HTTP-level work itself and
validates values with ``jsonschema`` through openapi-schema-validator's OAS 3.0 (write/request)
keyword set, with ``nullable`` also honoured next to ``enum`` / ``allOf`` / ``oneOf`` / ``anyOf``.

Known spec interpretation (see ``YousignOpenApi.rewritten_schemas``): an object schema with
``additionalProperties: false`` whose properties only come from ``oneOf``/``anyOf`` variants is
read as "each variant may only carry its own properties" (the intent of YouSign's generator).

Not checked: ``format: safe-string`` (YouSign-specific, undefined in the document), ``uri``
(no RFC 3987 checker installed), business rules written only in prose (date ranges, plans).

Parsing the 1.9 MB YAML takes ~0.6 s with libyaml (``yaml.CSafeLoader``; ~2.5 s with the
pure-Python ``SafeLoader``), so the prepared document is cached as JSON in a temp directory keyed by
the SHA-256 of the YAML file and of this module (~0.03 s to reload), and in memory per process.
"""

from __future__ import annotations

import contextlib
import email.policy
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from jsonschema import ValidationError
from jsonschema.validators import extend
from openapi_schema_validator import OAS30WriteValidator

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_SPEC_PATH",
    "ContractViolation",
    "LoadInfo",
    "Operation",
    "RecordedRequestLike",
    "Report",
    "SimpleRequest",
    "YousignOpenApi",
    "default_spec_path",
]

SPEC_FILENAME = "yousign-public-api-v3-openapi.yml"
ENV_SPEC_PATH = "YOUSIGN_OPENAPI_PATH"
ENV_CACHE_DIR = "YOUSIGN_OPENAPI_CACHE_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_CACHE_FORMAT = 1
# Any change to this module invalidates the on-disk cache (the prepared document depends on it).
_CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def default_spec_path() -> Path:
    """``$YOUSIGN_OPENAPI_PATH``, else ``<repo>/../shared/reference/yousign-public-api-v3-openapi.yml``."""
    env = os.environ.get(ENV_SPEC_PATH)
    if env:
        return Path(env).expanduser()
    return REPO_ROOT.parent / "shared" / "reference" / SPEC_FILENAME


# --------------------------------------------------------------------------------------------------
# Requests


class RecordedRequestLike(Protocol):
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class SimpleRequest:
    """A minimal request with the same attributes as the emulator's ``RecordedRequest``."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def from_httpx(cls, request: Any) -> SimpleRequest:
        """Build from an ``httpx.Request`` (e.g. inside an ``httpx.MockTransport`` handler)."""
        url = request.url
        query = url.query.decode("ascii") if isinstance(url.query, bytes) else str(url.query)
        return cls(
            method=request.method,
            path=url.raw_path.split(b"?", 1)[0].decode("ascii"),
            query=query,
            headers=dict(request.headers.items()),
            body=request.read(),
        )


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path_template: str  # "/signature_requests/{signatureRequestId}", without the server prefix
    operation_id: str
    pointer: str  # JSON pointer of the operation object in the document

    def __str__(self) -> str:
        return f"{self.operation_id} ({self.method} {self.path_template})"


@dataclass
class Report:
    request_line: str
    operation: Operation | None
    violations: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_for_violations(self) -> None:
        if self.violations:
            raise ContractViolation(self)


class ContractViolation(AssertionError):
    """A request does not conform to YouSign's OpenAPI document."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.operation = report.operation
        self.violations = list(report.violations)
        target = str(report.operation) if report.operation else "no matching operation"
        lines = [f"{report.request_line} -> {target}: violates the YouSign OpenAPI document"]
        lines += [_bullet(v) for v in report.violations]
        super().__init__("\n".join(lines))


def _bullet(text: str) -> str:
    first, *rest = text.split("\n")
    return "\n".join([f"  - {first}", *(f"    {line}" for line in rest)])


@dataclass(frozen=True)
class LoadInfo:
    source: str  # "yaml" (parsed now), "cache" (JSON cache file) or "memory"
    seconds: float
    spec_path: Path
    spec_sha256: str
    cache_file: Path | None
    yaml_loader: str


# --------------------------------------------------------------------------------------------------
# Loading, caching and preparing the document


_MEMORY: dict[str, YousignOpenApi] = {}


def _yaml_loader() -> type:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    uid = getattr(os, "getuid", lambda: "user")()
    return Path(tempfile.gettempdir()) / f"yousign-openapi-cache-{uid}"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _prepare(spec: dict[str, Any]) -> list[str]:
    """Annotate schemas with their names and apply the documented interpretation; return notes."""
    schemas = spec.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if isinstance(schema, dict):
            schema["x-schema-name"] = name
    rewritten: list[str] = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            if _is_closed_composition(node):
                _close_variants(spec, node)
                rewritten.append(pointer)
            for key, value in node.items():
                walk(value, f"{pointer}/{_escape(str(key))}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}")

    walk(spec, "#")
    return rewritten


def _is_closed_composition(node: dict[str, Any]) -> bool:
    return (
        node.get("additionalProperties") is False
        and not node.get("properties")
        and not node.get("patternProperties")
        and any(isinstance(node.get(key), list) for key in ("oneOf", "anyOf", "allOf"))
    )


def _close_variants(spec: dict[str, Any], node: dict[str, Any]) -> None:
    """``additionalProperties: false`` + ``oneOf`` (no own properties): close each variant instead."""
    base: set[str] = set()
    for member in node.get("allOf", []):
        base |= _property_names(spec, member)
    branches = [key for key in ("oneOf", "anyOf") if isinstance(node.get(key), list)]
    if not branches:
        node["properties"] = {name: {} for name in sorted(base)}
        return
    del node["additionalProperties"]
    for key in branches:
        closed = []
        for variant in node[key]:
            names = base | _property_names(spec, variant)
            closed.append(
                {
                    "allOf": [variant],
                    "properties": {name: {} for name in sorted(names)},
                    "additionalProperties": False,
                    "x-variant-label": _label(spec, variant),
                }
            )
        node[key] = closed


def _property_names(spec: dict[str, Any], schema: Any, depth: int = 0) -> set[str]:
    schema = _deref(spec, schema)
    if not isinstance(schema, dict) or depth > 20:
        return set()
    names = set(schema.get("properties", {}))
    for member in schema.get("allOf", []):
        names |= _property_names(spec, member, depth + 1)
    return names


def _deref(spec: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 50:
        node = _pointer_get(spec, node["$ref"])
        seen += 1
    return node


def _pointer_get(spec: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local references are supported, got {ref!r}")
    node: Any = spec
    for token in ref[1:].split("/")[1:]:
        token = _unescape(token)
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _label(spec: dict[str, Any], variant: Any) -> str:
    if isinstance(variant, dict):
        if "x-variant-label" in variant:
            return str(variant["x-variant-label"])
        target = _deref(spec, variant)
        if isinstance(target, dict):
            title = target.get("title") or target.get("x-schema-name")
            if title:
                return repr(title)
        if isinstance(variant.get("$ref"), str):
            return repr(variant["$ref"].rsplit("/", 1)[-1])
    return "(inline schema)"


# --------------------------------------------------------------------------------------------------
# Schema validation (jsonschema + OAS 3.0 keywords)


def _nullable_aware(keyword: Any) -> Any:
    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if instance is None and isinstance(schema, dict) and schema.get("nullable") is True:
            return
        yield from keyword(validator, value, instance, schema)

    return check


_RequestValidator = extend(
    OAS30WriteValidator,
    {
        key: _nullable_aware(OAS30WriteValidator.VALIDATORS[key])
        for key in ("allOf", "anyOf", "oneOf", "enum")
    },
)


# --------------------------------------------------------------------------------------------------
# The validator


@dataclass
class _Route:
    template: str
    regex: re.Pattern[str]
    param_names: tuple[str, ...]
    methods: dict[str, Operation]


class YousignOpenApi:
    """YouSign's OpenAPI document, ready to validate recorded requests."""

    def __init__(self, spec: dict[str, Any], *, rewritten: list[str], load_info: LoadInfo) -> None:
        self.spec = spec
        self.rewritten_schemas = tuple(rewritten)
        self.load_info = load_info
        self.base_paths = tuple(
            sorted(
                {urlsplit(server.get("url", "")).path.rstrip("/") for server in spec.get("servers", [])}
                or {""},
                key=len,
                reverse=True,
            )
        )
        self._validators: dict[str, Any] = {}
        self._routes = self._build_routes()

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        spec_path: Path | str | None = None,
        *,
        cache_dir: Path | str | None = None,
        use_cache: bool = True,
        memory_cache: bool = True,
    ) -> YousignOpenApi:
        """Load the document; ``spec_path`` defaults to :func:`default_spec_path`.

        ``use_cache``: read/write the prepared document as JSON in ``cache_dir`` (default
        ``$YOUSIGN_OPENAPI_CACHE_DIR`` or ``<tmp>/yousign-openapi-cache-<uid>``), keyed by the
        SHA-256 of the YAML file and of this module. ``memory_cache``: return the instance already
        loaded by this process for the same file content (its ``load_info`` is the first load's).
        """
        started = time.perf_counter()
        path = Path(spec_path) if spec_path is not None else default_spec_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"YouSign OpenAPI document not found at {path} "
                f"(set ${ENV_SPEC_PATH} or check out shared/ beside the repository)"
            )
        raw = path.read_bytes()
        spec_sha = hashlib.sha256(raw).hexdigest()
        key = f"{spec_sha[:32]}-{_CODE_DIGEST}-f{_CACHE_FORMAT}"
        loader_name = _yaml_loader().__name__
        if memory_cache and key in _MEMORY:
            return _MEMORY[key]

        cache_file = None
        if use_cache:
            cache_file = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
            cache_file = cache_file / f"{key}.json"
        prepared = _read_cache(cache_file, spec_sha) if cache_file else None
        source = "cache"
        if prepared is None:
            source = "yaml"
            spec = yaml.load(raw, Loader=_yaml_loader())  # a Safe loader (CSafeLoader or SafeLoader)
            # JSON round trip: the same values whether parsed now or read from the cache
            # (YAML timestamps become strings).
            spec = json.loads(json.dumps(spec, default=str))
            rewritten = _prepare(spec)
            prepared = {"format": _CACHE_FORMAT, "sha256": spec_sha, "spec": spec, "rewritten": rewritten}
            if cache_file:
                _write_cache(cache_file, prepared)
        info = LoadInfo(
            source=source,
            seconds=time.perf_counter() - started,
            spec_path=path,
            spec_sha256=spec_sha,
            cache_file=cache_file,
            yaml_loader=loader_name,
        )
        api = cls(prepared["spec"], rewritten=prepared["rewritten"], load_info=info)
        if memory_cache:
            _MEMORY[key] = api
        return api

    # ---------------------------------------------------------------- public API

    def operations(self) -> list[Operation]:
        return [op for route in self._routes for op in route.methods.values()]

    def find_operation(self, method: str, path: str) -> Operation:
        """Operation for a full request path (``/v3/...``); raises :class:`ContractViolation`."""
        report = Report(f"{method.upper()} {path}", None, [])
        match = self._match(method, path, report.violations)
        if match is None:
            raise ContractViolation(report)
        return match[0]

    def check(self, request: RecordedRequestLike, *, require_auth: bool = True) -> Report:
        """Validate without raising: the report lists every violation (empty = conforming)."""
        method = str(request.method).upper()
        path = str(request.path)
        query = _text(getattr(request, "query", "") or "")
        headers = {str(k).lower(): str(v) for k, v in dict(getattr(request, "headers", {}) or {}).items()}
        body = getattr(request, "body", b"") or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        line = f"{method} {path}" + (f"?{query}" if query else "")
        report = Report(line, None, [])
        match = self._match(method, path, report.violations)
        if match is None:
            return report
        operation, path_values = match
        report.operation = operation
        op = _pointer_get(self.spec, operation.pointer)
        params = self._parameters(operation)
        out = report.violations
        self._check_path_params(params, path_values, out)
        self._check_query(params, query, out)
        self._check_headers(params, headers, out)
        if require_auth:
            self._check_security(op, headers, out)
        self._check_body(operation, op, headers, bytes(body), out)
        return report

    def validate(self, request: RecordedRequestLike, *, require_auth: bool = True) -> None:
        """Raise :class:`ContractViolation` (an ``AssertionError``) naming each violation."""
        self.check(request, require_auth=require_auth).raise_for_violations()

    def validate_all(self, requests: Iterable[RecordedRequestLike], *, require_auth: bool = True) -> int:
        """Validate every request; one ``AssertionError`` listing all failing requests. Returns the count."""
        failures: list[str] = []
        count = 0
        for request in requests:
            count += 1
            report = self.check(request, require_auth=require_auth)
            if not report.ok:
                failures.append(str(ContractViolation(report)))
        if failures:
            raise AssertionError(
                f"{len(failures)} of {count} YouSign requests violate the OpenAPI document:\n\n"
                + "\n\n".join(failures)
            )
        return count

    # ---------------------------------------------------------------- routing

    def _build_routes(self) -> list[_Route]:
        routes = []
        for template, item in self.spec.get("paths", {}).items():
            if not isinstance(item, dict):
                continue
            names: list[str] = []
            parts = []
            for piece in re.split(r"(\{[^}/]+\})", template):
                if piece.startswith("{") and piece.endswith("}"):
                    names.append(piece[1:-1])
                    parts.append("([^/]+)")
                else:
                    parts.append(re.escape(piece))
            methods = {}
            for method in HTTP_METHODS:
                if isinstance(item.get(method), dict):
                    op = item[method]
                    pointer = f"#/paths/{_escape(template)}/{method}"
                    methods[method.upper()] = Operation(
                        method.upper(),
                        template,
                        str(op.get("operationId") or f"{method} {template}"),
                        pointer,
                    )
            routes.append(_Route(template, re.compile("^" + "".join(parts) + "$"), tuple(names), methods))
        # Concrete paths before templated ones (".../documents/download" before ".../{documentId}").
        routes.sort(key=lambda r: (len(r.param_names), -len(r.template)))
        return routes

    def _match(self, method: str, full_path: str, out: list[str]) -> tuple[Operation, dict[str, str]] | None:
        method = method.upper()
        path = full_path.split("?", 1)[0]
        base = next((b for b in self.base_paths if b == "" or path == b or path.startswith(b + "/")), None)
        if base is None:
            out.append(
                f"path {path!r} does not start with the API base path "
                f"{' or '.join(repr(b) for b in self.base_paths)} (servers: "
                f"{', '.join(s.get('url', '') for s in self.spec.get('servers', []))})"
            )
            return None
        relative = path[len(base) :] or "/"
        candidates = [(route, m) for route in self._routes if (m := route.regex.match(relative))]
        if not candidates:
            out.append(f"unknown path {relative!r}: no path template of the document matches it")
            return None
        for route, m in candidates:
            if method in route.methods:
                values = {
                    name: unquote(value) for name, value in zip(route.param_names, m.groups(), strict=True)
                }
                return route.methods[method], values
        allowed = sorted({verb for route, _ in candidates for verb in route.methods})
        out.append(
            f"method {method} is not defined for {candidates[0][0].template!r} "
            f"(allowed: {', '.join(allowed) or 'none'})"
        )
        return None

    def _parameters(self, operation: Operation) -> list[tuple[dict[str, Any], str]]:
        """(parameter object, JSON pointer of its schema); operation level overrides path level."""
        item_pointer = f"#/paths/{_escape(operation.path_template)}"
        found: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for owner in (item_pointer, operation.pointer):
            owner_node = _pointer_get(self.spec, owner)
            for index, param in enumerate(owner_node.get("parameters") or []):
                pointer = f"{owner}/parameters/{index}"
                while isinstance(param, dict) and isinstance(param.get("$ref"), str):
                    pointer = param["$ref"]
                    param = _pointer_get(self.spec, pointer)
                if isinstance(param, dict) and "name" in param and "in" in param:
                    found[(param["in"], param["name"])] = (param, f"{pointer}/schema")
        return list(found.values())

    # ---------------------------------------------------------------- schema helpers

    def _validator(self, pointer: str) -> Any:
        validator = self._validators.get(pointer)
        if validator is None:
            root = dict(self.spec)
            root["$ref"] = pointer
            validator = _RequestValidator(root, format_checker=_RequestValidator.FORMAT_CHECKER)
            self._validators[pointer] = validator
        return validator

    def _errors(self, pointer: str, instance: Any, where: str) -> list[str]:
        errors = sorted(
            self._validator(pointer).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
        )
        lines: list[str] = []
        for error in errors:
            lines.append("\n".join(self._describe(error, where)))
        return lines

    def _describe(self, error: ValidationError, where: str, base_depth: int = 0) -> list[str]:
        location = _location(where, error.absolute_path)
        if error.validator in ("oneOf", "anyOf") and error.context:
            variants = list(error.validator_value)
            by_variant: dict[int, list[ValidationError]] = {}
            for sub in error.context:
                by_variant.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
            depth = len(error.absolute_path)
            ranked = sorted(by_variant.items(), key=lambda item: _score(item[1], depth))
            best_index, best_errors = ranked[0]
            name = _schema_name(error.schema)
            lines = [
                f"{location}: matches none of the {len(variants)} {error.validator} variants of {name}; "
                f"closest is {_label(self.spec, variants[best_index])}:"
            ]
            for sub in sorted(best_errors, key=lambda e: list(map(str, e.absolute_path))):
                lines += ["  " + text for text in self._describe(sub, where)]
            others = []
            for index, errs in ranked[1:]:
                summary = "; ".join(self._describe(e, where)[0].rstrip(":") for e in errs[:3])
                if len(errs) > 3:
                    summary += f"; ... ({len(errs)} problems)"
                others.append(f"{_label(self.spec, variants[index])}: {summary}")
            if others:
                lines.append("  (other variants: " + " | ".join(others) + ")")
            return lines
        return [f"{location}: {_message(error)}"]

    def _schema_type(self, schema: Any, depth: int = 0) -> str | None:
        schema = _deref(self.spec, schema)
        if not isinstance(schema, dict) or depth > 10:
            return None
        if isinstance(schema.get("type"), str):
            return schema["type"]
        for key in ("allOf", "oneOf", "anyOf"):
            for member in schema.get(key, []):
                found = self._schema_type(member, depth + 1)
                if found:
                    return found
        return None

    def _property_schemas(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        """Every property schema reachable through allOf/oneOf/anyOf (first definition wins)."""
        schema = _deref(self.spec, schema)
        found: dict[str, Any] = {}
        if not isinstance(schema, dict) or depth > 10:
            return found
        for name, sub in (schema.get("properties") or {}).items():
            if sub:  # the {} placeholders added by _close_variants carry no type
                found.setdefault(name, _deref(self.spec, sub))
        for key in ("allOf", "oneOf", "anyOf"):
            for member in schema.get(key, []):
                for name, sub in self._property_schemas(member, depth + 1).items():
                    found.setdefault(name, sub)
        return found

    def _coerce(self, value: str, schema: Any) -> Any:
        kind = self._schema_type(schema)
        if kind == "integer" and re.fullmatch(r"[+-]?\d+", value):
            return int(value)
        if kind == "number" and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
            return float(value) if any(c in value for c in ".eE") else int(value)
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
        return value

    # ---------------------------------------------------------------- parameters

    def _check_path_params(
        self, params: list[tuple[dict[str, Any], str]], values: dict[str, str], out: list[str]
    ) -> None:
        declared = {p["name"]: (p, ptr) for p, ptr in params if p["in"] == "path"}
        for name, raw in values.items():
            if name not in declared:
                out.append(f"path parameter {name!r} is in the template but not declared")
                continue
            param, pointer = declared[name]
            if "schema" in param:
                where = f"path parameter {name!r}"
                out += self._errors(pointer, self._coerce(raw, param["schema"]), where)

    def _check_query(self, params: list[tuple[dict[str, Any], str]], query: str, out: list[str]) -> None:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError as exc:
            out.append(f"query string {query!r} is malformed: {exc}")
            return
        consumed = [False] * len(pairs)
        declared = [(p, ptr) for p, ptr in params if p["in"] == "query"]
        for param, pointer in declared:
            name = param["name"]
            schema = param.get("schema", {})
            style = param.get("style", "form")
            explode = param.get("explode", style == "form")
            where = f"query parameter {name!r}"
            if style == "deepObject":
                obj: dict[str, Any] = {}
                prefix = name + "["
                for i, (key, value) in enumerate(pairs):
                    if key == name:
                        consumed[i] = True
                        out.append(
                            f"{where} is a deepObject filter: send {name}[<operator>]=..., not {key}={value}"
                        )
                    elif key.startswith(prefix) and key.endswith("]") and "[" not in key[len(prefix) : -1]:
                        consumed[i] = True
                        prop = key[len(prefix) : -1]
                        if prop in obj:
                            out.append(f"{where}: {key} is repeated")
                        prop_schema = self._property_schemas(schema).get(prop, {})
                        obj[prop] = self._coerce(value, prop_schema) if prop_schema else value
                if not obj:
                    if param.get("required"):
                        out.append(f"{where} is required")
                    continue
                allowed = _allowed_operators(param.get("description", ""))
                for prop in obj:
                    if allowed and prop not in allowed:
                        out.append(
                            f"{where}: operator {prop!r} ({name}[{prop}]) is not allowed; "
                            f"the document allows {', '.join(allowed)}"
                        )
                out += _date_filter_problems(param.get("description", ""), name, obj)
                out += self._errors(pointer, obj, where)
                continue
            values = []
            for i, (key, value) in enumerate(pairs):
                if key == name:
                    consumed[i] = True
                    values.append(value)
            if not values:
                if param.get("required"):
                    out.append(f"{where} is required")
                continue
            kind = self._schema_type(schema)
            if kind == "array":
                items_schema = _deref(self.spec, schema).get("items", {})
                if not explode:
                    values = [v for value in values for v in value.split(",")]
                instance: Any = [self._coerce(v, items_schema) for v in values]
            else:
                if len(values) > 1:
                    out.append(f"{where} is sent {len(values)} times but is not an array")
                instance = self._coerce(values[0], schema)
            if "schema" in param:
                out += self._errors(pointer, instance, where)
        known = sorted(
            f"{p['name']}[...]" if p.get("style") == "deepObject" else p["name"] for p, _ in declared
        )
        for i, (key, value) in enumerate(pairs):
            if not consumed[i]:
                out.append(
                    f"unknown query parameter {key!r} (={value!r}); the operation declares: "
                    f"{', '.join(known) or 'no query parameters'}"
                )

    def _check_headers(
        self, params: list[tuple[dict[str, Any], str]], headers: dict[str, str], out: list[str]
    ) -> None:
        for param, pointer in params:
            if param["in"] != "header":
                continue
            name = param["name"]
            value = headers.get(name.lower())
            if value is None:
                if param.get("required"):
                    out.append(f"header {name!r} is required")
                continue
            if "schema" in param:
                out += self._errors(pointer, self._coerce(value, param["schema"]), f"header {name!r}")

    def _check_security(self, op: dict[str, Any], headers: dict[str, str], out: list[str]) -> None:
        requirements = op.get("security", self.spec.get("security"))
        if not requirements:
            return
        schemes = self.spec.get("components", {}).get("securitySchemes", {})
        problems = []
        for requirement in requirements:
            if not requirement:
                return  # {} = anonymous access allowed
            missing = []
            for scheme_name in requirement:
                scheme = schemes.get(scheme_name, {})
                if scheme.get("type") == "http":
                    auth = headers.get("authorization", "")
                    wanted = str(scheme.get("scheme", "")).lower()
                    kind, _, token = auth.partition(" ")
                    if kind.lower() != wanted or not token.strip():
                        missing.append(
                            f"'Authorization: {wanted.capitalize()} <token>' header ({scheme_name})"
                        )
                elif scheme.get("type") == "apiKey" and scheme.get("in") == "header":
                    if not headers.get(str(scheme.get("name", "")).lower()):
                        missing.append(f"{scheme.get('name')!r} header ({scheme_name})")
            if not missing:
                return
            problems.append(" and ".join(missing))
        out.append("security: missing " + " or ".join(problems))

    # ---------------------------------------------------------------- body

    def _check_body(
        self, operation: Operation, op: dict[str, Any], headers: dict[str, str], body: bytes, out: list[str]
    ) -> None:
        request_body = op.get("requestBody")
        body_pointer = f"{operation.pointer}/requestBody"
        while isinstance(request_body, dict) and isinstance(request_body.get("$ref"), str):
            body_pointer = request_body["$ref"]
            request_body = _pointer_get(self.spec, body_pointer)
        content_type = headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if not isinstance(request_body, dict):
            if body:
                out.append(
                    f"the operation takes no request body, but {len(body)} bytes were sent "
                    f"(Content-Type {content_type or 'missing'})"
                )
            return
        content: dict[str, Any] = request_body.get("content") or {}
        if not body:
            if request_body.get("required"):
                out.append(f"request body is required ({', '.join(content)})")
            elif content and "*/*" not in content:
                json_key = next((k for k in content if _is_json(k)), None)
                if json_key and "schema" in content[json_key]:
                    pointer = f"{body_pointer}/content/{_escape(json_key)}/schema"
                    empty = self._errors(pointer, {}, "body")
                    if empty:
                        out.append(
                            "request body is missing; even an empty JSON object would not satisfy "
                            "the schema:\n" + "\n".join(empty)
                        )
                else:
                    out.append(f"request body is missing (expected {', '.join(content)})")
            return
        if not content:
            return
        if not media_type:
            out.append(
                f"{len(body)}-byte body sent without a Content-Type header (expected {', '.join(content)})"
            )
            return
        key = _match_media_type(media_type, content)
        if key is None:
            out.append(
                f"Content-Type {media_type!r} is not accepted; the operation accepts {', '.join(content)}"
            )
            return
        media = content[key] or {}
        if "schema" not in media:
            return
        pointer = f"{body_pointer}/content/{_escape(key)}/schema"
        if _is_json(media_type):
            try:
                instance = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                out.append(f"body is not valid JSON: {exc}")
                return
            out += self._errors(pointer, instance, "body")
        elif media_type == "multipart/form-data":
            instance = self._multipart_instance(content_type, body, media.get("schema"), out)
            if instance is not None:
                out += self._errors(pointer, instance, "body")
        elif media_type == "application/x-www-form-urlencoded":
            properties = self._property_schemas(media.get("schema"))
            form: dict[str, Any] = {}
            for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                form[name] = self._coerce(value, properties.get(name, {}))
            out += self._errors(pointer, form, "body")
        elif self._schema_type(media.get("schema")) == "string":
            return  # raw binary upload
        else:
            out.append(f"cannot validate a {media_type!r} body against an object schema")

    def _multipart_instance(
        self, content_type: str, body: bytes, schema: Any, out: list[str]
    ) -> dict[str, Any] | None:
        if "boundary=" not in content_type.lower():
            out.append(f"multipart Content-Type without a boundary: {content_type!r}")
            return None
        envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1") + body
        message = BytesParser(policy=email.policy.HTTP).parsebytes(envelope)
        if not isinstance(message, EmailMessage) or not message.is_multipart():
            out.append("body is not a multipart message")
            return None
        for defect in message.defects:
            out.append(f"malformed multipart body: {type(defect).__name__}: {defect}")
        properties = self._property_schemas(schema)
        fields: dict[str, list[tuple[Any, bool]]] = {}
        order: list[str] = []
        for part in message.iter_parts():
            disposition = part.get_content_disposition()
            name = part.get_param("name", header="content-disposition")
            if disposition != "form-data" or not name:
                out.append(
                    f"multipart part without 'Content-Disposition: form-data; name=...': {part.items()}"
                )
                continue
            name = str(name)
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            is_file = filename is not None
            value: Any
            if is_file:
                value = payload
            elif part.get_content_type() == "application/json" and part.get("content-type"):
                try:
                    value = json.loads(payload.decode("utf-8"))
                except ValueError as exc:
                    out.append(
                        f"multipart field {name!r} is declared application/json but is not JSON: {exc}"
                    )
                    value = payload.decode("utf-8", "replace")
            else:
                value = payload.decode(part.get_content_charset() or "utf-8", "replace")
            if name not in fields:
                order.append(name)
            fields.setdefault(name, []).append((value, is_file))

        instance: dict[str, Any] = {}
        for raw_name in order:
            entries = fields[raw_name]
            bracket = re.fullmatch(r"([^\[\]]+)\[([^\[\]]*)\]", raw_name)
            name = bracket.group(1) if bracket else raw_name
            sub = bracket.group(2) if bracket else None
            prop_schema = properties.get(name, {})
            kind = self._schema_type(prop_schema) if prop_schema else None
            binary = isinstance(prop_schema, dict) and prop_schema.get("format") == "binary"
            for _, is_file in entries:
                if binary and not is_file:
                    out.append(
                        f"multipart field {name!r} is binary in the schema but sent without a filename"
                    )
                elif is_file and prop_schema and not binary:
                    out.append(f"multipart field {name!r} is sent as a file but the schema expects a {kind}")
            if sub is not None and sub != "":  # name[key]=value: an object property
                obj_schema = self._property_schemas(prop_schema).get(sub, {}) if prop_schema else {}
                target = instance.setdefault(name, {})
                if not isinstance(target, dict):
                    out.append(f"multipart field {name!r} is sent both as a value and as {raw_name}")
                    continue
                target[sub] = self._coerce_form(entries[-1][0], obj_schema)
                continue
            if sub == "" or kind == "array":
                items_schema = _deref(self.spec, prop_schema).get("items", {}) if prop_schema else {}
                existing = instance.setdefault(name, [])
                if not isinstance(existing, list):
                    out.append(f"multipart field {name!r} is sent both as a value and as a list")
                    continue
                existing.extend(self._coerce_form(value, items_schema) for value, _ in entries)
                continue
            if len(entries) > 1:
                out.append(f"multipart field {name!r} is sent {len(entries)} times but is not an array")
            instance[name] = self._coerce_form(entries[0][0], prop_schema)
        return instance

    def _coerce_form(self, value: Any, schema: Any) -> Any:
        return self._coerce(value, schema) if isinstance(value, str) and schema else value


# --------------------------------------------------------------------------------------------------
# Small helpers


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _is_json(media_type: str) -> bool:
    media_type = media_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _match_media_type(media_type: str, content: Mapping[str, Any]) -> str | None:
    keys = {key.split(";", 1)[0].strip().lower(): key for key in content}
    if media_type in keys:
        return keys[media_type]
    wildcard = media_type.split("/", 1)[0] + "/*"
    if wildcard in keys:
        return keys[wildcard]
    return keys.get("*/*")


def _allowed_operators(description: str) -> list[str]:
    """Filter operators listed in a deepObject parameter description ("Allowed operators: `eq`, `in`.")."""
    match = re.search(r"Allowed operators?:\s*((?:`[^`]+`[\s,]*(?:and|or)?[\s,]*)+)", description)
    return re.findall(r"`([^`]+)`", match.group(1)) if match else []


def _date_filter_problems(description: str, name: str, obj: Mapping[str, Any]) -> list[str]:
    """Date filters ("the date format required is `yyyy-mm-dd`"): values and ``between`` arity."""
    if "yyyy-mm-dd" not in description:
        return []
    problems = []
    for operator, value in obj.items():
        dates = str(value).split(",")
        if operator == "between" and len(dates) != 2:
            problems.append(f"query parameter {name!r}: {name}[between] needs two comma-separated dates")
        elif operator != "between" and len(dates) != 1:
            problems.append(f"query parameter {name!r}: {name}[{operator}] takes a single date")
        for text in dates:
            try:
                ok = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)) and bool(date.fromisoformat(text))
            except ValueError:
                ok = False
            if not ok:
                problems.append(
                    f"query parameter {name!r}: {text!r} in {name}[{operator}] is not a yyyy-mm-dd date"
                )
    return problems


def _location(where: str, path: Iterable[Any]) -> str:
    text = where
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else f".{item}"
    return text


def _schema_name(schema: Any) -> str:
    if isinstance(schema, dict):
        name = schema.get("x-schema-name") or schema.get("title")
        if name:
            return str(name)
    return "the schema"


def _message(error: ValidationError) -> str:
    if error.validator == "required":
        found = re.match(r"^'(.+)' is a required property$", error.message)
        name = found.group(1) if found else error.message
        return f"missing required property {name!r} [required]"
    if error.validator == "additionalProperties" and isinstance(error.schema, dict):
        return f"{error.message} [additionalProperties: false]"
    if error.validator in ("enum", "format", "pattern", "type"):
        return f"{error.message} [{error.validator}]"
    return f"{error.message} [{error.validator}: {error.validator_value!r}]"


def _score(errors: list[ValidationError], depth: int) -> tuple[int, int]:
    """Rank oneOf/anyOf variants: fewest problems at the variant's own level, then fewest overall."""
    top = 0
    for error in errors:
        if len(error.absolute_path) != depth:
            continue
        if error.validator == "type":
            top += 100
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            declared = set((error.schema or {}).get("properties", {}))
            top += max(1, len(set(error.instance) - declared))
        else:
            top += 1
    return top, len(errors)


def _read_cache(cache_file: Path, spec_sha: str) -> dict[str, Any] | None:
    try:
        with cache_file.open("rb") as handle:
            prepared = json.load(handle)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(prepared, dict)
        or prepared.get("sha256") != spec_sha
        or prepared.get("format") != _CACHE_FORMAT
    ):
        return None
    return prepared


def _write_cache(cache_file: Path, prepared: dict[str, Any]) -> None:
    try:
        cache_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=cache_file.parent, prefix=cache_file.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(prepared, handle, separators=(",", ":"))
            os.replace(tmp_name, cache_file)  # atomic: concurrent test runs never see half a file
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
    except OSError:
        pass  # the cache is an optimisation only
