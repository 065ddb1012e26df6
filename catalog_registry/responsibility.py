"""The responsibility list (共享责任清单): the published resources a department provides, as JSON or a spreadsheet."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.models import SharingType, UpdateCycle
from catalog_registry.schemas import LABELS, ResponsibilityEntry, ResponsibilityList
from ops import audit, spreadsheet
from ops.auth import Principal
from ops.errors import NotFound


def responsibility_list(db: Session, *, who: Principal, department_id: str) -> ResponsibilityList:
    """The published resources a department is responsible for providing, with their sharing type."""
    department = repository.department(db, department_id)
    if department is None:
        raise NotFound(f"department {department_id} not found")
    rows = repository.published_entries_of(db, department.id)
    totals = {t.value: 0 for t in SharingType}
    entries = []
    for entry, version in rows:
        totals[version.sharing_type] += 1
        entries.append(
            ResponsibilityEntry(
                id=entry.id,
                code=entry.code,
                name=version.name,
                sharing_type=version.sharing_type,
                conditions=version.conditions,
                legal_basis=version.legal_basis,
                update_cycle=version.update_cycle,
                is_certificate=version.is_certificate,
                published_at=version.published_at,
            )
        )
    totals["total"] = len(entries)
    audit.record(db, actor=who, action="catalog.responsibility_list.read", object_type="department", object_id=department.id)
    return ResponsibilityList(
        department_id=department.id,
        department_name=department.name,
        department_code=department.code,
        totals=totals,
        entries=entries,
    )


def _label_of(enum: type[SharingType] | type[UpdateCycle]) -> dict[str, str]:
    """Each value's Chinese label: the first spelling the import template accepts for it."""
    labels: dict[str, str] = {}
    for label, value in LABELS[enum].items():
        labels.setdefault(value, label)
    return labels


# The spreadsheet speaks one language, Chinese, in its headers and its values alike.
SHARING_LABELS = _label_of(SharingType)
CYCLE_LABELS = _label_of(UpdateCycle)


def responsibility_csv(report: ResponsibilityList) -> str:
    """The responsibility list as a spreadsheet (CSV, UTF-8 with BOM for Excel; no cell can run as a formula)."""
    header = ["提供部门", "资源代码", "资源名称", "共享类型", "共享条件", "不予共享依据", "更新周期", "电子证照"]
    rows = (
        [
            report.department_name,
            e.code,
            e.name,
            SHARING_LABELS[e.sharing_type],
            e.conditions or "",
            e.legal_basis or "",
            CYCLE_LABELS.get(e.update_cycle, e.update_cycle),
            "是" if e.is_certificate else "否",
        ]
        for e in report.entries
    )
    return spreadsheet.csv_text(header, rows)
