"""A quick check of certificate faces for the common shape of type schemas, beside the full JSON Schema validator.

Type schemas are JSON Schema 2020-12, checked by `jsonschema`, which names every wrong field but costs
tens of microseconds per face. Most schemas are a flat object of scalar fields with `type`, `enum`,
`maxLength` / `minLength`, `pattern`, `format` and bounds: for those, `compile_quick_check` returns a
function that says True only when the face is valid by the same rules (the same `re.search`, the same
`FormatChecker`, the same comparisons). It never says True for a face the full validator refuses; when
it says False, or when a schema uses anything else, the full validator decides and names the errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jsonschema import FormatChecker

QuickCheck = Callable[[dict[str, Any]], bool]
FieldCheck = Callable[[Any], bool]

# Keywords that only annotate: they never make an instance invalid.
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly"})
_FIELD_KEYWORDS = frozenset(
    {"type", "enum", "maxLength", "minLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
)
_TOP_KEYWORDS = frozenset({"$schema", "type", "properties", "required", "additionalProperties"})
_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_FORMATS = FormatChecker()


def _is_type(name: str) -> FieldCheck | None:
    # Conservative on purpose: 3.0 is an "integer" for JSON Schema, but here only int is; the full
    # validator then decides. bool is never a number.
    checks: dict[str, FieldCheck] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: type(v) is int,
        "number": lambda v: type(v) is int or type(v) is float,
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return checks.get(name)


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _bound(keyword: str, limit: Any) -> FieldCheck | None:
    if not _is_number(limit):
        return None
    # Each applies to numbers only, as in jsonschema; other types pass this keyword.
    compare: dict[str, FieldCheck] = {
        "minimum": lambda v: not _is_number(v) or v >= limit,
        "maximum": lambda v: not _is_number(v) or v <= limit,
        "exclusiveMinimum": lambda v: not _is_number(v) or v > limit,
        "exclusiveMaximum": lambda v: not _is_number(v) or v < limit,
    }
    return compare[keyword]


def _keyword(keyword: str, value: Any) -> FieldCheck | None:
    """The check of one keyword of a field schema, or None if this module does not handle it."""
    if keyword == "type":
        names = value if isinstance(value, list) else [value]
        checks = [_is_type(n) for n in names if isinstance(n, str)]
        if not names or len(checks) != len(names) or any(c is None for c in checks):
            return None
        known = [c for c in checks if c is not None]
        return lambda v: any(c(v) for c in known)
    if keyword == "enum":
        if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
            return None
        allowed = frozenset(value)
        return lambda v: isinstance(v, str) and v in allowed
    if keyword in ("maxLength", "minLength"):
        if type(value) is not int:
            return None
        if keyword == "maxLength":
            return lambda v: not isinstance(v, str) or len(v) <= value
        return lambda v: not isinstance(v, str) or len(v) >= value
    if keyword == "pattern":
        if not isinstance(value, str):
            return None
        try:
            compiled = re.compile(value)
        except re.error:
            return None
        return lambda v: not isinstance(v, str) or compiled.search(v) is not None
    if keyword == "format":
        if not isinstance(value, str):
            return None
        return lambda v: _FORMATS.conforms(v, value)
    return _bound(keyword, value)


def _field(schema: Any) -> FieldCheck | None:
    if not isinstance(schema, dict) or not set(schema) <= _FIELD_KEYWORDS | _ANNOTATIONS:
        return None
    checks = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _keyword(keyword, value)
        if check is None:
            return None
        checks.append(check)
    if len(checks) == 1:
        return checks[0]

    def field(value: Any) -> bool:
        for check in checks:  # noqa: SIM110 (a plain loop: all() over a generator costs more, once per field and face)
            if not check(value):
                return False
        return True

    return field


def compile_quick_check(schema: dict[str, Any]) -> QuickCheck | None:
    """A quick check for a flat object schema of scalar fields, or None if the schema needs the full validator."""
    if not set(schema) <= _TOP_KEYWORDS | _ANNOTATIONS or schema.get("type") != "object":
        return None
    if schema.get("$schema", _DRAFT_2020_12) != _DRAFT_2020_12:
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list) or not isinstance(extra, bool):
        return None
    if not all(isinstance(name, str) for name in required):
        return None
    fields: dict[str, FieldCheck] = {}
    for name, spec in properties.items():
        check = _field(spec)
        if check is None:
            return None
        fields[name] = check
    needed = tuple(required)

    def quick(face: dict[str, Any]) -> bool:
        if not isinstance(face, dict):
            return False
        for name in needed:
            if name not in face:
                return False
        for name, value in face.items():
            check = fields.get(name)
            if check is None:
                if not extra:
                    return False
            elif not check(value):
                return False
        return True

    return quick
