"""Certificate types (证照目录): their definitions, the departments that may issue them, face-field validation."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from sqlalchemy.orm import Session

from certhub import caches, repository
from certhub.common import field_errors
from certhub.facecheck import QuickCheck, compile_quick_check
from certhub.models import (
    CertificateType,
)
from certhub.schemas import (
    CertificateTypeCreate,
    CertificateTypeUpdate,
)
from ops import audit
from ops.audit import Actor
from ops.codes import uscc_problem
from ops.db import check_if_match
from ops.errors import Conflict, Invalid, NotFound


class TypeDefinition(Protocol):
    """What issuing reads of a certificate type: a row (``CertificateType``) or a :class:`TypeSnapshot`."""

    @property
    def id(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def holder_kind(self) -> str: ...
    @property
    def face_schema(self) -> dict[str, Any]: ...
    @property
    def validity(self) -> dict[str, Any]: ...
    @property
    def issuer_codes(self) -> list[Any]: ...
    @property
    def template(self) -> dict[str, Any]: ...
    @property
    def active(self) -> bool: ...
    @property
    def version(self) -> int: ...


@dataclass(frozen=True)
class TypeSnapshot:
    """A certificate type as it was at `stamp` (its version and time of change), kept by a process between
    issuances (``caches.issuing_types``) and used only while the database still shows that stamp."""

    stamp: str
    id: str
    code: str
    name: str
    holder_kind: str
    face_schema: dict[str, Any]
    validity: dict[str, Any]
    issuer_codes: list[Any]
    template: dict[str, Any]
    active: bool
    version: int

    @classmethod
    def of(cls, row: CertificateType, stamp: str) -> TypeSnapshot:
        return cls(
            stamp=stamp,
            id=row.id,
            code=row.code,
            name=row.name,
            holder_kind=row.holder_kind,
            face_schema=copy.deepcopy(row.face_schema),
            validity=copy.deepcopy(row.validity or {}),
            issuer_codes=list(row.issuer_codes),
            template=copy.deepcopy(row.template),
            active=row.active,
            version=row.version,
        )


def _check_type_definition(code: str | None, schema: dict[str, Any] | None, issuer_codes: list[str] | None) -> None:
    errors: list[dict[str, Any]] = []
    if code is not None:
        problem = uscc_problem(code[:18])
        if problem:
            errors.append({"field": "code", "message": f"the first 18 characters must be a 统一社会信用代码: {problem}"})
        if not code[18:].isdigit() or len(code) != 21:
            errors.append({"field": "code", "message": "must end with 3 digits"})
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            errors.append({"field": "face_schema", "message": f"not a valid JSON Schema: {exc.message}"})
        else:
            if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
                errors.append({"field": "face_schema", "message": 'must be {"type": "object", "properties": {…}}'})
    for i, issuer in enumerate(issuer_codes or []):
        problem = uscc_problem(issuer)
        if problem:
            errors.append({"field": f"issuer_codes[{i}]", "message": problem})
    if errors:
        raise field_errors(errors, "the certificate type is invalid")


def create_type(db: Session, *, who: Actor, data: CertificateTypeCreate) -> CertificateType:
    """Add a certificate type to the catalogue (证照目录)."""
    code = data.code.strip().upper()
    _check_type_definition(code, data.face_schema, data.issuer_codes)
    if repository.type_by_code(db, code):
        raise Conflict(f"certificate type {code} already exists", errors=[{"field": "code", "message": "duplicate"}])
    row = CertificateType(
        code=code,
        name=data.name,
        holder_kind=data.holder_kind,
        face_schema=data.face_schema,
        validity=data.validity.model_dump(),
        issuer_codes=sorted({c.upper() for c in data.issuer_codes}),
        template=data.template,
        public_fields=_checked_public_fields(data.public_fields, data.face_schema),
    )
    db.add(row)
    db.flush()
    audit.record(db, actor=who, action="cert_type.create", object_type="cert_type", object_id=code, detail={"name": data.name})
    return row


def _checked_public_fields(fields: list[str], schema: dict[str, Any]) -> list[str]:
    """The face fields a type lets the public 验真 page show: each must be a field of its face schema."""
    known = set(schema.get("properties", {}))
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise Invalid(
            f"public_fields names no face field: {', '.join(unknown)}",
            errors=[{"field": "public_fields", "message": f"not a face field: {f}"} for f in unknown],
        )
    return list(dict.fromkeys(fields))


def get_type(db: Session, *, code: str) -> CertificateType:
    row = repository.type_by_code(db, code.strip().upper())
    if row is None:
        raise NotFound(f"certificate type {code} is not in the catalogue")
    return row


def update_type(db: Session, *, who: Actor, code: str, data: CertificateTypeUpdate, if_match: str | None) -> CertificateType:
    """Change a type: its schema, validity, issuers, template, or take it out of use."""
    row = get_type(db, code=code)
    check_if_match(if_match, row.version)
    changes = data.model_dump(exclude_unset=True)
    _check_type_definition(None, changes.get("face_schema"), changes.get("issuer_codes"))
    if "public_fields" in changes or "face_schema" in changes:
        wanted = changes.get("public_fields", row.public_fields) or []
        changes["public_fields"] = _checked_public_fields(wanted, changes.get("face_schema", row.face_schema))
    for key, value in changes.items():
        if key == "issuer_codes":
            value = sorted({c.upper() for c in value})
        setattr(row, key, value)
    db.flush()
    audit.record(
        db, actor=who, action="cert_type.update", object_type="cert_type", object_id=row.code, detail={"changed": sorted(changes)}
    )
    return row


def example_types() -> list[dict[str, Any]]:
    """The shipped example definitions (居民身份证, 营业执照, …)."""
    text = resources.files("certhub.catalog").joinpath("examples.json").read_text(encoding="utf-8")
    types: list[dict[str, Any]] = json.loads(text)["types"]
    return types


def load_types(
    db: Session, *, who: Actor, definitions: Iterable[dict[str, Any]], issuer_codes: dict[str, list[str]] | None = None
) -> list[str]:
    """Load type definitions (the shipped examples or a file); existing codes are left as they are."""
    loaded = []
    for definition in definitions:
        data = CertificateTypeCreate.model_validate(definition)
        if issuer_codes and data.code in issuer_codes:
            data.issuer_codes = issuer_codes[data.code]
        if repository.type_by_code(db, data.code):
            continue
        create_type(db, who=who, data=data)
        loaded.append(data.code)
    return loaded


def allow_issuer(db: Session, *, who: Actor, type_code: str, department_code: str) -> CertificateType:
    """Let a department issue a type."""
    row = get_type(db, code=type_code)
    problem = uscc_problem(department_code)
    if problem:
        raise Invalid(f"department code is not a valid 统一社会信用代码: {problem}")
    row.issuer_codes = sorted({*row.issuer_codes, department_code})
    db.flush()
    audit.record(
        db,
        actor=who,
        action="cert_type.allow_issuer",
        object_type="cert_type",
        object_id=row.code,
        detail={"department": department_code},
    )
    return row


@dataclass(frozen=True)
class FaceValidator:
    stamp: str
    full: Draft202012Validator
    quick: QuickCheck | None


def _validator(ctype: TypeDefinition) -> FaceValidator:
    """The type's compiled validators, kept until the type changes."""
    stamp = f"{ctype.id}:{ctype.version}"
    cached = caches.face_validators.get(ctype.id)
    if cached is None or cached.stamp != stamp:
        cached = FaceValidator(
            stamp=stamp,
            full=Draft202012Validator(ctype.face_schema, format_checker=FormatChecker()),
            quick=compile_quick_check(ctype.face_schema),
        )
        caches.face_validators[ctype.id] = cached
    return cached


def validate_face(ctype: TypeDefinition, face: dict[str, Any]) -> None:
    """Check the face fields against the type's schema; Invalid names every wrong field."""
    validator = _validator(ctype)
    if validator.quick is not None and validator.quick(face):
        return
    errors = []
    for err in sorted(validator.full.iter_errors(face), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in err.absolute_path)
        errors.append({"field": f"face.{path}" if path else "face", "message": err.message})
    if errors:
        raise field_errors(errors, f"the face fields do not match the {ctype.name} schema")
