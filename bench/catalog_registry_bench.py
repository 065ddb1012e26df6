"""Catalogue search benchmark: load generated entries, then time Chinese search beside a primary-key lookup.

    python bench/catalog_registry_bench.py            # 20,000 entries (a few minutes on 2 cores)
    python bench/catalog_registry_bench.py --full     # 100,000 entries, as the issue asks

SQLite always; PostgreSQL too when GOVHUB_BENCH_DATABASE_URL (or GOVHUB_TEST_DATABASE_URL) names a server
database: a fresh database is created beside it and dropped at the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from catalog_registry import service
from catalog_registry.models import CatalogEntry
from govhub.database import upgrade
from ops.cli import CLI_ADMIN
from ops.codes import uscc_check_char
from ops.config import Settings
from ops.db import make_engine, make_sessionmaker
from ops.identity import service as identity
from ops.identity.schemas import DepartmentCreate

TARGET_MS = 50.0

CITIES = ["昆明市", "曲靖市", "玉溪市", "保山市", "昭通市", "丽江市", "普洱市", "临沧市", "楚雄州", "红河州"]
BUREAUS = ["公安局", "民政局", "人力资源和社会保障局", "医疗保障局", "住房和城乡建设局", "市场监督管理局", "税务局",
           "卫生健康委员会", "教育体育局", "交通运输局", "自然资源和规划局", "住房公积金管理中心", "残疾人联合会"]  # fmt: skip
SUBJECTS: dict[str, list[str]] = {
    "户籍人口": ["身份证号", "姓名", "性别", "民族", "出生日期", "户籍地址", "户主姓名", "与户主关系"],
    "婚姻登记": ["男方身份证号", "女方身份证号", "登记日期", "登记机关", "婚姻状况", "结婚证字号"],
    "社会保险参保": ["身份证号", "姓名", "参保险种", "参保状态", "缴费基数", "参保单位名称"],
    "医疗保险缴费": ["身份证号", "姓名", "缴费年度", "缴费金额", "医保类别", "定点医疗机构"],
    "住房公积金缴存": ["身份证号", "姓名", "单位名称", "缴存基数", "缴存比例", "账户余额"],
    "不动产登记": ["不动产单元号", "权利人", "权利人证件号", "坐落", "面积", "用途", "登记日期"],
    "营业执照": ["统一社会信用代码", "企业名称", "法定代表人", "注册资本", "成立日期", "经营范围", "住所"],
    "机动车登记": ["号牌号码", "车辆识别代号", "所有人", "车辆类型", "注册日期", "使用性质"],
    "驾驶证": ["身份证号", "姓名", "准驾车型", "初次领证日期", "有效期止", "累积记分"],
    "出生医学证明": ["出生证编号", "新生儿姓名", "出生日期", "出生地点", "母亲身份证号", "父亲身份证号"],
    "学历学位": ["身份证号", "姓名", "毕业院校", "专业", "学历层次", "毕业证书编号"],
    "低保救助": ["身份证号", "姓名", "救助类别", "保障人数", "月保障金额", "所属街道"],
    "残疾人证": ["身份证号", "姓名", "残疾类别", "残疾等级", "残疾人证号", "发证日期"],
    "纳税信用": ["统一社会信用代码", "纳税人名称", "信用等级", "评价年度", "主管税务机关"],
    "行政处罚": ["统一社会信用代码", "当事人名称", "处罚决定书文号", "处罚类别", "处罚日期", "处罚机关"],
    "建设工程规划许可": ["项目名称", "建设单位", "许可证号", "建设规模", "发证日期"],
    "疫苗接种": ["身份证号", "姓名", "疫苗名称", "接种日期", "接种单位", "剂次"],
    "死亡登记": ["身份证号", "姓名", "死亡日期", "死亡原因", "登记机关"],
}
QUALIFIERS = ["基本信息", "变更记录", "明细", "核验信息", "历史记录", "统计数据", "名单", "档案信息"]
USES = ["政务服务事项办理中的身份核验", "社会救助对象认定", "住房保障资格审核", "企业开办一件事", "不动产交易登记",
        "医保待遇核定", "公积金贷款审批", "入学资格审核", "行政执法监督", "信用联合奖惩"]  # fmt: skip
CYCLES = ["实时", "每天", "每周", "每月", "每季度", "每半年", "每年"]
SHARING = ["无条件共享"] * 6 + ["有条件共享"] * 3 + ["不予共享"]

QUERIES = {
    "2char": ["户籍", "婚姻", "社保", "医保", "公积", "车辆", "不动", "营业", "低保", "纳税", "学历", "疫苗", "处罚", "死亡"],
    "3char": ["身份证", "公积金", "不动产", "驾驶证", "残疾人", "营业执", "出生医", "统一社", "参保单", "许可证"],
    "4char": [
        "户籍人口",
        "婚姻登记",
        "营业执照",
        "住房公积",
        "纳税信用",
        "行政处罚",
        "疫苗接种",
        "学历学位",
        "低保救助",
        "机动车登",
    ],
}


def _uscc(rng: random.Random) -> str:
    body = "11" + "530100" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc_check_char(body)


def _rows(n: int, departments: list[tuple[str, str]], rng: random.Random) -> Any:
    subjects = list(SUBJECTS)
    for i in range(n):
        code, dept_name = departments[i % len(departments)]
        subject = rng.choice(subjects)
        items = SUBJECTS[subject]
        city = dept_name[:3]
        name = f"{city}{subject}{rng.choice(QUALIFIERS)}"
        sharing = rng.choice(SHARING)
        abstract = (
            f"{city}{subject}相关数据，包括{'、'.join(items[:4])}等{len(items)}项信息，"
            f"由{dept_name}按{rng.choice(CYCLES)}更新，主要用于{rng.choice(USES)}。"
        )
        item_cell = "; ".join(
            f"{it}|string|100|{rng.choice(['内部', '敏感'])}|{'是' if '身份证' in it else '否'}" for it in items
        )
        yield [
            f"R{i:07d}", name, rng.choice(["基础", "主题", "部门"]), abstract, item_cell, sharing,
            "仅限办理相关政务服务事项时使用" if sharing == "有条件共享" else "",
            "《中华人民共和国个人信息保护法》第十三条" if sharing == "不予共享" else "",
            f"{items[0]}|必填|10", rng.choice(CYCLES), "是" if subject in ("驾驶证", "出生医学证明", "残疾人证") else "否",
            "是", code,
        ]  # fmt: skip


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def _time(fn: Callable[[], Any], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def run_backend(label: str, url: str, data_dir: Path, entries: int, repeats: int) -> list[dict[str, Any]]:
    rng = random.Random(20261124)
    settings = Settings(data_dir=data_dir, database_url=url, master_key="a" * 43 + "=", run_scheduler=False)  # type: ignore[arg-type]
    engine = make_engine(settings.effective_database_url)
    upgrade(engine, settings)
    factory = make_sessionmaker(engine)
    departments: list[tuple[str, str]] = []
    with factory() as db:
        for city in CITIES:
            for bureau in BUREAUS[:5]:
                code = _uscc(rng)
                identity.create_department(
                    db, who=CLI_ADMIN, data=DepartmentCreate(code=code, name=city + bureau, level="city", region_code="530100")
                )
                departments.append((code, city + bureau))
        db.commit()
    path = data_dir / f"catalogue-{label}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["资源代码", "资源名称", "资源分类", "资源摘要", "信息项", "共享类型", "共享条件", "不予共享依据",
                         "管控参数", "更新周期", "是否电子证照", "数据集提供", "提供部门代码"])  # fmt: skip
        writer.writerows(_rows(entries, departments, rng))

    started = time.perf_counter()
    with factory() as db:
        service.import_entries(db, who=CLI_ADMIN, open_text=lambda: path.open(encoding="utf-8", newline=""), mode="publish")
        db.commit()
    load_seconds = time.perf_counter() - started
    print(f"[{label}] loaded {entries} entries in {load_seconds:.1f} s", flush=True)
    # What autovacuum does after a bulk load on PostgreSQL (visibility map for index-only scans, statistics).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))

    rows: list[dict[str, Any]] = []
    with factory() as db:
        ids = [str(i) for i in db.scalars(CatalogEntry.__table__.select().with_only_columns(CatalogEntry.id).limit(5000))]
        provider_ids = [str(i) for (i,) in db.execute(text("SELECT id FROM departments"))]
        pk = _time(lambda: db.get(CatalogEntry, rng.choice(ids), populate_existing=True), repeats * 3)
        pk50, pk95 = _percentiles(pk)
        rows.append(_row(f"{label}_pk_lookup_p50", pk50, "primary-key lookup (same run)", pk50, None))
        rows.append(_row(f"{label}_pk_lookup_p95", pk95, "primary-key lookup (same run)", pk95, None))

        def search(**kwargs: Any) -> Callable[[], Any]:
            return lambda: service.search(db, who=CLI_ADMIN, limit=20, **kwargs)

        for kind, words in QUERIES.items():
            samples: list[float] = []
            for _ in range(max(1, repeats // len(words))):
                for word in words:
                    samples += _time(search(q=word), 1)
            p50, p95 = _percentiles(samples)
            rows.append(_row(f"{label}_search_{kind}_p50", p50, f"{label}_pk_lookup_p50", pk50, None))
            rows.append(_row(f"{label}_search_{kind}_p95", p95, f"{label}_pk_lookup_p95", pk95, TARGET_MS))

        filtered: list[float] = []
        filters: list[dict[str, Any]] = [
            {"sharing_type": "conditional"},
            {"update_cycle": "daily"},
            {"classification": "base"},
            {"is_certificate": True},
        ]
        for _ in range(max(1, repeats // 8)):
            for extra in filters:
                filtered += _time(search(q=rng.choice(QUERIES["2char"]), **extra), 1)
            filtered += _time(search(q=rng.choice(QUERIES["2char"]), provider_department_id=rng.choice(provider_ids)), 1)
            filtered += _time(search(q=rng.choice(QUERIES["4char"]), sharing_type="unconditional", update_cycle="monthly"), 1)
            filtered += _time(search(provider_department_id=rng.choice(provider_ids)), 1)
            filtered += _time(search(sharing_type="not_shared", is_certificate=False), 1)
        p50, p95 = _percentiles(filtered)
        rows.append(_row(f"{label}_search_filtered_p50", p50, f"{label}_pk_lookup_p50", pk50, None))
        rows.append(_row(f"{label}_search_filtered_p95", p95, f"{label}_pk_lookup_p95", pk95, TARGET_MS))

        # the second page of a common two-character query (cursor pagination)
        second: list[float] = []
        for word in QUERIES["2char"]:
            _hits, cursor = service.search(db, who=CLI_ADMIN, q=word, limit=20)
            if cursor:
                second += _time(lambda c=cursor, w=word: service.search(db, who=CLI_ADMIN, q=w, cursor=c, limit=20), 3)
        if second:
            p50, p95 = _percentiles(second)
            rows.append(_row(f"{label}_search_next_page_p95", p95, f"{label}_pk_lookup_p95", pk95, TARGET_MS))
        db.rollback()
    rows.append(_row(f"{label}_import_entries_per_s", entries / load_seconds, "entries loaded", entries, None, unit="1/s"))
    engine.dispose()
    return rows


def _row(
    name: str, value: float, baseline_name: str, baseline_value: float, target: float | None, unit: str = "ms"
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": f"catalog_{name}",
        "value": round(value, 3),
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": round(baseline_value, 3),
    }
    if target is not None:
        row["target"] = target
    return row


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="100,000 entries (default 20,000)")
    parser.add_argument("--entries", type=int, help="number of entries to load")
    parser.add_argument("--repeats", type=int, default=200, help="timed searches per query kind")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL even when configured")
    args = parser.parse_args(argv)
    entries = args.entries or (100_000 if args.full else 20_000)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        base = Path(tmp)
        (base / "sqlite").mkdir()
        results += run_backend("sqlite", f"sqlite:///{base / 'sqlite' / 'bench.db'}", base / "sqlite", entries, args.repeats)
        server = os.environ.get("GOVHUB_BENCH_DATABASE_URL") or os.environ.get("GOVHUB_TEST_DATABASE_URL")
        if server and not args.sqlite_only:
            name = f"govhub_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(make_url(server), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                (base / "pg").mkdir()
                url = make_url(server).set(database=name).render_as_string(hide_password=False)
                results += run_backend("postgresql", url, base / "pg", entries, args.repeats)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    for row in results:
        target = f"  (target ≤ {row['target']})" if "target" in row else ""
        print(f"{row['name']:<44} {row['value']:>10} {row['unit']:<4}  vs {row['baseline_name']} {row['baseline_value']}{target}")
    return results


if __name__ == "__main__":
    main()
