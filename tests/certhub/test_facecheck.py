"""The quick face check never accepts a face the type's JSON Schema refuses, and takes the common faces."""

from __future__ import annotations

import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from certhub import service
from certhub.facecheck import compile_quick_check
from tests.certhub.conftest import id_face
from tests.factories import citizen_id

VALUES: list[Any] = [
    "张三", "", "x" * 60, "x" * 250, "男", "女", "未知", "汉", "1990-03-07", "2024-02-29", "2023-02-29", "1990-3-7",
    "110105199003072514", "11010519900307251X", "11010519900307251x", "单独所有", "共同共有", "住宅", "家庭户", "集体户",
    "硕士", "C1", "A1B2", "C7", "110101001001", "1234567890123456", "110101001001GB00001F00010001", "91110000MA01ABCD2X",
    0, 1, -1, 3.0, 89.5, 1e9, True, False, None, [], {}, ["男"],
]  # fmt: skip


def _full(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.mark.parametrize("definition", service.example_types(), ids=lambda d: str(d["code"]))
def test_the_quick_check_of_every_example_type_accepts_only_what_the_schema_accepts(definition: dict[str, Any]) -> None:
    schema = definition["face_schema"]
    quick = compile_quick_check(schema)
    assert quick is not None, "the shipped types are flat objects of scalar fields"
    full = _full(schema)
    chance = random.Random(definition["code"])
    # per field, the values its own schema accepts: most faces are made of them, so both answers occur
    fitting = {name: [v for v in VALUES if _full(spec).is_valid(v)] for name, spec in schema["properties"].items()}
    # every single-field change of a valid face, and every missing field
    base = {name: values[0] for name, values in fitting.items()}
    assert quick(base) and full.is_valid(base)
    for name in fitting:
        assert quick({k: v for k, v in base.items() if k != name}) == full.is_valid({k: v for k, v in base.items() if k != name})
        for value in VALUES:
            changed = dict(base, **{name: value})
            assert not quick(changed) or full.is_valid(changed), changed
    # and random faces
    accepted = refused = 0
    for _ in range(2000):
        face = {
            name: chance.choice(fitting[name] if fitting[name] and chance.random() < 0.97 else VALUES)
            for name in fitting
            if chance.random() < 0.99
        }
        if chance.random() < 0.02:
            face["extra"] = "x"
        if quick(face):
            accepted += 1
            assert full.is_valid(face), face
        else:
            refused += 1
    assert accepted > 100 and refused > 100


def test_an_id_card_face_takes_the_quick_path_and_a_wrong_one_still_gets_every_field_named() -> None:
    definition = next(d for d in service.example_types() if d["code"] == "11100000000019713D001")
    quick = compile_quick_check(definition["face_schema"])
    assert quick is not None
    holder = citizen_id()
    assert quick(id_face(holder))
    wrong = id_face(holder, sex="未知", birth_date="1990-02-30")
    assert not quick(wrong)
    fields = sorted(".".join(map(str, e.absolute_path)) for e in _full(definition["face_schema"]).iter_errors(wrong))
    assert fields == ["birth_date", "sex"]


def test_the_quick_check_leaves_numbers_it_is_unsure_of_to_the_full_validator() -> None:
    schema = {"type": "object", "properties": {"floors": {"type": "integer", "minimum": 1}}, "required": ["floors"]}
    quick = compile_quick_check(schema)
    assert quick is not None
    assert quick({"floors": 3}) and not quick({"floors": 0}) and not quick({"floors": True})
    assert not quick({"floors": 3.0}) and _full(schema).is_valid({"floors": 3.0})  # JSON Schema: 3.0 is an integer


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}},
        {"type": "object", "patternProperties": {"^x": {"type": "string"}}, "additionalProperties": False},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {}},
        {"type": "object", "properties": {"a": {"enum": [1, "1"]}}},
        {"type": "object", "properties": {"a": {"type": "array"}}},
    ],
    ids=["oneOf", "ref", "nested object", "patternProperties", "draft-07", "mixed enum", "array"],
)
def test_schemas_beyond_flat_scalar_fields_are_left_to_the_full_validator(schema: dict[str, Any]) -> None:
    assert compile_quick_check(schema) is None
