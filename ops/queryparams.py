"""One rule for every API route: a query parameter the route does not declare is refused.

A misspelt filter (`?regioncode=`) would otherwise be ignored and the caller would get the whole,
unfiltered list. `known_query_only` is a dependency the composition root adds to every API router.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from ops.errors import Invalid

# Route id → (the route, its names); keeping the route keeps its id from being reused by another.
_declared: dict[int, tuple[APIRoute, frozenset[str]]] = {}


def declared_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameter names a route accepts (its own and its dependencies', by alias)."""
    known = _declared.get(id(route))
    if known is None or known[0] is not route:
        known = _declared[id(route)] = (route, frozenset(_query_names(route.dependant)))
    return known[1]


def _query_names(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for param in dependant.query_params:
        annotation = param.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a `Query()` model
            found.update(field.alias or name for name, field in annotation.model_fields.items())
        else:
            found.add(param.alias)
    for sub in dependant.dependencies:
        found |= _query_names(sub)
    return found


async def known_query_only(request: Request) -> None:
    """Refuse (422) a request whose query string names a parameter its route does not declare.

    A coroutine, though it awaits nothing: it does no I/O, and FastAPI runs a plain function dependency
    in the thread pool, a round trip through a worker thread that every request of the API paid."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    unknown = sorted(set(request.query_params.keys()) - declared_query_names(route))
    if unknown:
        allowed = ", ".join(sorted(declared_query_names(route))) or "none"
        raise Invalid(
            f"unknown query parameter: {', '.join(unknown)} (this operation accepts: {allowed})",
            errors=[
                {"field": name, "in": "query", "message": "not a parameter of this operation", "type": "extra_forbidden"}
                for name in unknown
            ],
        )


KNOWN_QUERY_ONLY = Depends(known_query_only)
