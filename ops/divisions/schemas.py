"""Response models of the division table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DivisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(description="GB/T 2260 code, e.g. 330106")
    name: str = Field(description="e.g. 西湖区")
    level: str = Field(description="province / prefecture / county")
    parent_code: str | None = Field(description="the division it lies in (none for a province)")


class DivisionPath(DivisionRead):
    path: list[DivisionRead] = Field(description="the division and those it lies in, province first")


class UnknownRegionDepartment(BaseModel):
    id: str
    name: str
    region_code: str


class DivisionsLoadedRead(BaseModel):
    source: str
    divisions: int
    provinces: int
    prefectures: int
    counties: int
    departments_unknown: list[UnknownRegionDepartment] = Field(
        description="departments whose region code the new table does not hold: correct them"
    )
