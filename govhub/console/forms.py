"""Form helpers of the exchange and catalogue pages: reading submitted values, turning refusals into
messages next to fields, and the Chinese names of the domains' values.

A refused action is rolled back before the page is shown again, so nothing half-done is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from govhub.console.pages import Page, errors_of, templates
from ops.errors import Conflict, HubError, Invalid, PreconditionFailed
from ops.identity import repository as identity_repo
from ops.workdays.service import SHANGHAI

T = TypeVar("T")
STALE = "已被他人处理或修改，请刷新页面查看最新状态后再操作"

# The Chinese names of the values the exchange and the catalogue use.
LABELS: dict[str, dict[str, str]] = {
    "state": {
        "submitted": "待审查",
        "refused": "不予受理",
        "provisioning": "待提供",
        "provider_review": "待提供部门审批",
        "granted": "已授权",
        "rejected": "提供部门不予批准",
        "coordinating": "协调中",
        "closed": "已结束（维持不予共享）",
        "withdrawn": "已撤回",
    },
    "step": {"review": "规范性审查", "provision": "平台提供", "decision": "提供部门审批", "coordination": "协调"},
    "action": {
        "file": "提交申请",
        "accept_direct": "受理（平台直接提供）",
        "accept_to_provider": "受理（推送提供部门）",
        "refuse": "不予受理",
        "provide": "平台提供",
        "approve": "提供部门批准",
        "reject": "提供部门不予批准",
        "withdraw": "撤回",
        "escalate": "提请协调",
        "coordinate_grant": "协调：授权",
        "coordinate_uphold": "协调：维持",
        "extension_request": "申请延期",
        "extension_approved": "批准延期",
        "extension_refused": "不批准延期",
    },
    "extension": {"pending": "待审批", "approved": "已批准", "refused": "未批准", "lapsed": "已失效"},
    "sharing_type": {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"},
    "classification": {"base": "基础类", "theme": "主题类", "department": "部门类"},
    "update_cycle": {
        "realtime": "实时",
        "daily": "每天",
        "weekly": "每周",
        "monthly": "每月",
        "quarterly": "每季度",
        "semiannual": "每半年",
        "annual": "每年",
    },
    "sharing_method": {"api": "接口", "file": "文件", "database": "数据库"},
    "open_attribute": {"open": "无条件开放", "conditional": "有条件开放", "not_open": "不予开放"},
    "sensitivity": {"public": "公开", "internal": "内部", "sensitive": "敏感", "secret": "涉密"},
    "data_type": {
        "string": "字符型",
        "integer": "整数",
        "decimal": "数值型",
        "date": "日期型",
        "datetime": "日期时间型",
        "boolean": "布尔型",
    },
    "entry_state": {"draft": "草稿", "published": "已发布", "retired": "已停用"},
    "version_state": {
        "draft": "草稿",
        "submitted": "待审核",
        "returned": "已退回",
        "published": "已发布",
        "superseded": "已被新版本替代",
        "withdrawn": "已撤销",
    },
    "rating": {"good": "好评", "average": "中评", "poor": "差评"},
    "access_kind": {
        "lookup": "按参数查询",
        "export": "批量导出",
        "api": "接口调用",
        "push": "变更推送",
        "feed": "变更订阅拉取",
        "broker": "消息总线发布",
    },
    "subscription_kind": {"webhook": "推送到回调地址", "feed": "按游标拉取"},
    "delivery_state": {"pending": "待推送", "delivered": "已送达", "parked": "已暂停（待重放）"},
    "grant_state": {"active": "有效", "expired": "已过期", "revoked": "已撤销"},
}


def label(kind: str, value: Any) -> str:
    """The Chinese name of a value (the value itself when it has none)."""
    return LABELS.get(kind, {}).get(str(value), str(value))


def beijing_time(value: datetime | None) -> str:
    """A stored UTC time as Beijing time, to the minute."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


templates.env.globals["share_label"] = label
templates.env.filters["beijing_time"] = beijing_time


# -- refusals shown next to fields ---------------------------------------------------------------


@dataclass
class Failure:
    """Why an action was refused: a message, field → message, and the HTTP status of the page."""

    message: str
    fields: dict[str, str] = field(default_factory=dict)
    status: int = 422

    def placed(self, known: Iterable[str]) -> Failure:
        """Errors of fields the form does not show go into the message, so that none is lost."""
        shown = set(known)
        stray = [f"{name}: {text}" for name, text in self.fields.items() if name not in shown]
        message = f"{self.message}（{'；'.join(stray)}）" if stray else self.message
        return Failure(message, {k: v for k, v in self.fields.items() if k in shown}, self.status)


_PYDANTIC_ZH = {
    "missing": "必填",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "too_short": "至少选择 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "string_pattern_mismatch": "格式不正确",
    "literal_error": "请从选项中选择",
}


# Short field messages of the services, in Chinese.
_SERVICE_ZH = {"required": "必填", "before start": "不能早于开始日期", "unknown": "不是可选的值"}


def _pydantic_fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "form"
        template = _PYDANTIC_ZH.get(error["type"])
        if error.get("input") == "" and error["type"].startswith("string_too_short"):
            template = "必填"
        text = template.format(**(error.get("ctx") or {})) if template else str(error["msg"]).removeprefix("Value error, ")
        fields.setdefault(name, text)
    return fields


def failure_of(exc: HubError | ValidationError | StaleDataError) -> Failure:
    """A refusal as the page shows it; a concurrent change is 409 with a plain instruction."""
    if isinstance(exc, StaleDataError):
        return Failure(STALE, {}, 409)
    if isinstance(exc, ValidationError):
        return Failure("请更正标出的字段", _pydantic_fields(exc), 422)
    message, fields = errors_of(exc)
    fields = {name: _SERVICE_ZH.get(text, text) for name, text in fields.items()}
    if isinstance(exc, Conflict | PreconditionFailed):
        message = f"{STALE}（{exc.detail}）"
    return Failure(message, fields, exc.status)


def attempt(db: Session, action: Callable[[], T]) -> T | Failure:
    """Run a service call and return its result; on a refusal roll its changes back and say why."""
    try:
        return action()
    except (HubError, ValidationError, StaleDataError) as exc:
        db.rollback()
        return failure_of(exc)


# -- reading forms ---------------------------------------------------------------------------------


def form_lists(page: Page, *names: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The submitted form (CSRF checked) and the values of its multi-valued fields (checkboxes)."""
    return page.form(), {name: [str(v) for v in page.submitted.getlist(name)] for name in names}


def version_of(data: dict[str, str]) -> int:
    """The record version the form was rendered with (its hidden field)."""
    raw = data.get("version", "")
    if not raw.isdigit():
        raise Invalid("表单缺少版本号，请刷新页面后重试", errors=[{"field": "version", "message": "missing"}])
    return int(raw)


def date_field(data: dict[str, str], name: str, errors: dict[str, str], *, required: bool = False) -> date | None:
    """A YYYY-MM-DD field; a problem goes into `errors` under its name."""
    raw = data.get(name, "").strip()
    if not raw:
        if required:
            errors[name] = "必填"
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "日期格式应为 YYYY-MM-DD"
        return None


def department_names(db: Session, ids: Iterable[str | None]) -> dict[str, str]:
    """Names of the departments shown on a page ("platform" is the platform)."""
    names = {"platform": "平台管理部门"}
    for department_id in {i for i in ids if i and i != "platform"}:
        department = identity_repo.department_by_id(db, department_id)
        names[department_id] = department.name if department else department_id
    return names
