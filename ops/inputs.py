"""What the hub takes as input at all, for every route: one rule, applied before a route's own validation.

- Text is what PostgreSQL can store: no NUL character and no unpaired surrogate (``\\ud800``), in a path
  parameter, a query parameter, a JSON body (its keys too) or a form field.
- An integer fits a BIGINT column: ``-2**63 .. 2**63-1``.
- A number is finite: no NaN or Infinity (``json`` reads ``NaN``, ``Infinity`` and ``1e400``).
- A date or a date-time is ISO 8601 text (not a Unix time) between ``EARLIEST`` and ``LATEST``: far enough
  from the calendar's ends that working-day arithmetic and time-zone conversion cannot overflow.

What breaks the rule is refused with a 422 built like every validation error's (``ops.errors.field_errors``),
naming the field and where it was sent (``in``: path, query or body); as an ``Invalid`` (a ``HubError``), so
the console's pages show it as a page. Nothing that breaks
it reaches a service or the database. ``ops.db.HubRoute`` applies :func:`check` on every route of the hub;
the types of the parameters are read once from the route's declaration (:func:`input_rule`).
"""

from __future__ import annotations

import math
import re
import types
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import params
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from ops.errors import Invalid, field_errors

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)
_INTEGER = re.compile(r"^\s*[+-]?\d[\d_]*\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_URLENCODED, _MULTIPART = "application/x-www-form-urlencoded", "multipart/form-data"
_MAX_ERRORS = 20


class Kind(Enum):
    """What a typed parameter holds, as far as the rule is concerned."""

    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"


Loc = tuple[str | int, ...]


def unstorable_text(text: str) -> str | None:
    """Why PostgreSQL cannot store `text` (None when it can)."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid Unicode text), which cannot be stored"
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Annotated and Optional/Union taken apart."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arm in get_args(annotation) if arm is not type(None) for t in _unwrap(arm)]
    return [annotation]


def _kind(annotation: Any) -> Kind | None:
    """The kind of a scalar parameter (lists of them too), or None when the rule has nothing typed to check."""
    for arm in _unwrap(annotation):
        if get_origin(arm) in (list, set, frozenset, tuple):
            inner = [a for a in get_args(arm) if a is not Ellipsis]
            kind = _kind(inner[0]) if inner else None
        elif isinstance(arm, type) and issubclass(arm, bool | Enum):
            kind = None
        elif isinstance(arm, type) and issubclass(arm, datetime):
            kind = Kind.DATETIME
        elif isinstance(arm, type) and issubclass(arm, date):
            kind = Kind.DATE
        elif isinstance(arm, type) and issubclass(arm, int):
            kind = Kind.INTEGER
        elif isinstance(arm, type) and issubclass(arm, float):
            kind = Kind.NUMBER
        else:
            kind = None
        if kind is not None:
            return kind
    return None


@dataclass(frozen=True)
class InputRule:
    """What one route takes: its typed path and query parameters, its JSON body's type, whether it takes a form."""

    path: tuple[tuple[str, Kind], ...]
    query: tuple[tuple[str, Kind], ...]
    body: Any  # the JSON body's annotation, None when the route takes no JSON body
    # The form media types checked: a declared Form/File body (FastAPI parses the form: both), or an endpoint
    # that reads its own body (the console's pages, the token endpoint: URL-encoded forms only, read whole,
    # never an upload).
    form: frozenset[str]


def input_rule(route: APIRoute) -> InputRule:
    """Read once from the route's declaration (its dependencies' parameters included)."""
    fields = get_flat_params(route.dependant)

    def typed(where: type[params.Param]) -> tuple[tuple[str, Kind], ...]:
        found = ((f.alias, _kind(f.field_info.annotation)) for f in fields if isinstance(f.field_info, where))
        return tuple((alias, kind) for alias, kind in found if kind is not None)

    field = route.body_field
    if field is not None:
        declares_form = isinstance(field.field_info, params.Form)  # File is a Form
        form = frozenset({_URLENCODED, _MULTIPART} if declares_form else ())
        body = None if declares_form else field.field_info.annotation
    else:  # an endpoint that reads its body itself says what it takes (or is a console page: a form)
        declared = (route.openapi_extra or {}).get("requestBody", {}).get("content")
        form = frozenset({_URLENCODED} if declared is None or _URLENCODED in declared else ())
        body = Any if declared is not None and "application/json" in declared else None
    return InputRule(path=typed(params.Path), query=typed(params.Query), body=body, form=form)


class _Findings:
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def add(self, loc: Loc, kind: str, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS and all(e["loc"] != loc for e in self.errors):
            self.errors.append({"type": kind, "loc": loc, "msg": message, "input": None})

    def text(self, loc: Loc, value: str) -> None:
        why = unstorable_text(value)
        if why is not None:
            self.add(loc, "text_unstorable", why)

    def integer(self, loc: Loc, value: int) -> None:
        if not BIGINT_MIN <= value <= BIGINT_MAX:
            self.add(loc, "int_out_of_range", f"must be between {BIGINT_MIN} and {BIGINT_MAX}")

    def number(self, loc: Loc, value: float) -> None:
        if not math.isfinite(value):
            self.add(loc, "float_not_finite", "must be a finite number (not NaN or Infinity)")

    def when(self, loc: Loc, value: Any, kind: Kind) -> None:
        """A date or date-time: ISO 8601 text, as the OpenAPI description says (``format: date`` or
        ``date-time``; pydantic alone would also take a Unix time), within the range."""
        if (isinstance(value, int | float) and not isinstance(value, bool)) or (isinstance(value, str) and _NUMBER.match(value)):
            example = "2026-09-30" if kind is Kind.DATE else "2026-09-30T16:00:00+08:00"
            self.add(loc, "date_not_iso", f"must be an ISO 8601 {kind.value} such as {example}, not a number")
            return
        try:
            parsed = _adapter(kind).validate_python(value)
        except (ValidationError, OverflowError, ValueError):
            return  # not a date at all: the route's own validation says so
        try:
            day = parsed.astimezone(UTC).date() if isinstance(parsed, datetime) and parsed.tzinfo else parsed
        except OverflowError:
            day = parsed.date()  # within a day of the calendar's ends: out of range either way
        if isinstance(day, datetime):
            day = day.date()
        if not EARLIEST <= day <= LATEST:
            self.add(loc, "date_out_of_range", f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")

    def raw(self, loc: Loc, value: str, kind: Kind) -> None:
        """A path or query parameter as sent (text), checked by the kind its route declares."""
        if kind is Kind.INTEGER and _INTEGER.match(value):
            digits = value.strip().lstrip("+-").replace("_", "").lstrip("0")
            if len(digits) > 19:
                self.add(loc, "int_out_of_range", f"must be between {BIGINT_MIN} and {BIGINT_MAX}")
            else:
                self.integer(loc, int(value.replace("_", "")))
        elif kind is Kind.NUMBER:
            try:
                self.number(loc, float(value))
            except ValueError:
                return
        elif kind in (Kind.DATE, Kind.DATETIME):
            self.when(loc, value, kind)

    def json(self, loc: Loc, value: Any) -> None:
        """Every value of a JSON document: its text, integers and numbers."""
        if isinstance(value, str):
            self.text(loc, value)
        elif isinstance(value, bool):
            return
        elif isinstance(value, int):
            self.integer(loc, value)
        elif isinstance(value, float):
            self.number(loc, value)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.text((*loc, key), key)
                self.json((*loc, key), item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.json((*loc, index), item)

    def typed(self, loc: Loc, value: Any, annotation: Any) -> None:
        """The dates of a JSON value, found through the type the route declares for it."""
        for arm in _unwrap(annotation):
            origin = get_origin(arm)
            if isinstance(arm, type) and issubclass(arm, BaseModel) and isinstance(value, dict):
                for name, field in arm.model_fields.items():
                    key = field.alias or name
                    if key in value:
                        self.typed((*loc, key), value[key], field.annotation)
            elif origin in (list, set, frozenset, tuple) and isinstance(value, list):
                inner = [a for a in get_args(arm) if a is not Ellipsis]
                for index, item in enumerate(value):
                    self.typed((*loc, index), item, inner[min(index, len(inner) - 1)] if inner else Any)
            elif origin is dict and isinstance(value, dict) and len(get_args(arm)) == 2:
                for key, item in value.items():
                    self.typed((*loc, key), item, get_args(arm)[1])
            else:
                kind = _kind(arm)
                if kind in (Kind.DATE, Kind.DATETIME) and isinstance(value, str | int | float):
                    self.when(loc, value, kind)


def document_bounds(openapi: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI description what the rule holds integers to: every integer without a bound of
    its own is between BIGINT_MIN and BIGINT_MAX (so a client, or a fuzzer, knows where they end)."""

    def bound(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer":
                if "maximum" not in node and "exclusiveMaximum" not in node:
                    node["maximum"] = BIGINT_MAX
                if "minimum" not in node and "exclusiveMinimum" not in node:
                    node["minimum"] = BIGINT_MIN
            for value in node.values():
                bound(value)
        elif isinstance(node, list):
            for value in node:
                bound(value)

    bound(openapi.get("paths", {}))
    bound(openapi.get("components", {}))
    return openapi


@cache
def _adapter(kind: Kind) -> TypeAdapter[Any]:
    return TypeAdapter(datetime if kind is Kind.DATETIME else date)


async def check(request: Request, rule: InputRule) -> None:
    """Refuse the request (422, naming each field) when any of its input breaks the rule."""
    found = _Findings()
    typed_path = dict(rule.path)
    for name, value in request.path_params.items():
        if isinstance(value, str):
            found.text(("path", name), value)
            if name in typed_path:
                found.raw(("path", name), value, typed_path[name])
    typed_query = dict(rule.query)
    for name, value in request.query_params.multi_items():
        found.text(("query", name), name)
        found.text(("query", name), value)
        if name in typed_query:
            found.raw(("query", name), value, typed_query[name])
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if rule.body is not None and _is_json(content_type):
        try:
            body = await request.json()  # kept by the request: the route reads this same document
        except ValueError:
            body = None  # malformed: the route's own reading answers 400
        found.json(("body",), body)
        found.typed(("body",), body, rule.body)
    elif content_type in rule.form:
        if content_type == _URLENCODED:
            await request.body()  # kept by the request: an endpoint that reads it itself finds it again
        form = await request.form()  # kept by the request, as above
        for name, value in form.multi_items():
            found.text(("body", name), name)
            if isinstance(value, str):
                found.text(("body", name), value)
            elif isinstance(value, UploadFile) and value.filename:
                found.text(("body", name), value.filename)
    if found.errors:
        summary, errors = field_errors(found.errors)
        raise Invalid(summary, errors=errors)  # a 422 like a validation error's; the console's pages show it


def _is_json(content_type: str) -> bool:
    return (
        content_type == ""
        or content_type == "application/json"
        or (content_type.startswith("application/") and content_type.endswith("+json"))
    )
