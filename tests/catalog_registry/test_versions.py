"""Dataset versions: each upload keeps its rows and records its change set against the version it replaced."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from catalog_registry import service
from catalog_registry.models import CatalogEntry, Dataset
from catalog_registry.versions import archive_versions
from ops.errors import NotFound
from tests.catalog_registry.helpers import publish, upload
from tests.conftest import Hub

HEADER = "身份证号,姓名,户籍地址,出生日期\n"
ZHANG = "110105199001011234,张三,北京市朝阳区幸福路1号,1990-01-01\n"
ZHANG_OLD = "110105199001011234,张三,北京市朝阳区幸福路1号(旧址),1990-01-01\n"
LI = "11010519491231002X,李四,北京市东城区和平街2号,1949-12-31\n"
WANG = "110105198001010011,王五,北京市西城区长安街3号,1980-01-01\n"


def _changes(db: Session, entry_id: str) -> list[tuple[str, str, str]]:
    """(op, 姓名, 户籍地址) of the newest version's change set."""
    (pending,) = [c for c in service.pending_change_sets(db) if c.resource_id == entry_id]
    found = service.changes(db, dataset_id=pending.dataset_id, after=0, upto=pending.size, limit=100)
    return [(c.op, c.data["姓名"], c.data["户籍地址"]) for c in found]


def test_a_key_holding_several_rows_pairs_them_in_order(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    first = upload(client, provider, entry["id"], HEADER + ZHANG + LI + ZHANG_OLD)
    assert first.status_code == 201 and (first.json()["rows_added"], first.json()["rows_changed"]) == (0, 0)
    assert service.pending_change_sets(db) == []  # the first version has no change set

    # 张三's second row changed, 李四 left, 王五 arrived; 张三's first row is as it was.
    second = upload(client, provider, entry["id"], HEADER + ZHANG + WANG + ZHANG_OLD.replace("(旧址)", "(新址)"))
    counts = second.json()
    assert (counts["rows_added"], counts["rows_changed"], counts["rows_removed"]) == (1, 1, 1)
    assert sorted(_changes(db, entry["id"])) == [
        ("added", "王五", "北京市西城区长安街3号"),
        ("changed", "张三", "北京市朝阳区幸福路1号(新址)"),
        ("removed", "李四", "北京市东城区和平街2号"),
    ]
    # Both versions are still served.
    current = service.lookup_rows(
        db, resource_id=entry["id"], params={"身份证号": "11010519491231002X"}, fields=["姓名"], limit=5
    )
    then = service.lookup_rows(
        db, resource_id=entry["id"], params={"身份证号": "11010519491231002X"}, fields=["姓名"], limit=5, version=1
    )
    assert current == [] and then == [{"姓名": "李四"}]


def test_an_unchanged_upload_has_an_empty_change_set(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    upload(client, provider, entry["id"], HEADER + ZHANG + LI)
    same = upload(client, provider, entry["id"], HEADER + LI + ZHANG).json()  # another order, the same rows
    assert (same["rows_added"], same["rows_changed"], same["rows_removed"]) == (0, 0, 0)


def test_without_comparable_keys_rows_are_compared_whole(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    upload(client, provider, entry["id"], HEADER + ZHANG + LI)
    stored = db.get(CatalogEntry, entry["id"])
    assert stored is not None and stored.current_dataset_id
    dataset = db.get(Dataset, stored.current_dataset_id)
    assert dataset is not None
    dataset.key_items = ["姓名"]  # as if the control parameters had changed since
    db.commit()
    result = upload(client, provider, entry["id"], HEADER + ZHANG + LI.replace("和平街2号", "和平街9号")).json()
    assert (result["rows_added"], result["rows_changed"], result["rows_removed"]) == (1, 0, 1)


def test_versions_beyond_the_newest_ones_drop_their_rows_and_say_so(client: TestClient, hub: Hub, db: Session) -> None:
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin)
    for n in range(3):
        upload(client, provider, entry["id"], HEADER + ZHANG + LI.replace("李四", f"李四{n}"))
    assert archive_versions(db, kept=2, batch=1) == 1  # a batch at a time: version 1 keeps one row for now
    assert archive_versions(db, kept=2) == 1 and archive_versions(db, kept=2) == 0
    db.commit()
    states = {
        d["number"]: d["state"]
        for d in client.get(f"/catalog/entries/{entry['id']}/datasets", headers=provider.headers).json()["items"]
    }
    assert states == {1: "archived", 2: "replaced", 3: "loaded"}
    params = {"身份证号": "11010519491231002X"}
    kept = service.lookup_rows(db, resource_id=entry["id"], params=params, fields=["姓名"], limit=5, version=2)
    assert kept == [{"姓名": "李四1"}]
    with pytest.raises(NotFound, match="no longer kept"):
        service.lookup_rows(db, resource_id=entry["id"], params=params, fields=["姓名"], limit=5, version=1)
