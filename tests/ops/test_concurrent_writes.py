"""Many writers at once against a served hub (`govhub serve`, its own database): every write waits its
turn and goes on. On SQLite a write used to fail with 503 "the database is not reachable right now"
whenever another connection had committed between its first read and its first write."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from govhub.app import scheduled_jobs
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import make_engine, make_sessionmaker, utcnow
from ops.hubprocess import ADMIN_ID, ADMIN_SECRET, HubProcess, drop_postgres, fresh_postgres
from ops.scheduler import Job, LeaseRunner
from ops.storage import make_store
from tests.catalog_registry.helpers import entry_body
from tests.certhub.conftest import ID_CARD, id_face
from tests.factories import citizen_id, uscc
from tests.seal.helpers import seal_body

pytestmark = pytest.mark.slow

WRITERS = 16


@contextmanager
def served(*, workers: int = 1, scheduler: bool = True) -> Iterator[tuple[HubProcess, str]]:
    """A hub on a database of its own (PostgreSQL when the suite runs on it); yields it and its database URL."""
    base = os.environ.get("GOVHUB_TEST_DATABASE_URL")
    url, name = fresh_postgres(base) if base else ("", "")
    try:
        with HubProcess(database_url=url, workers=workers, scheduler=scheduler) as hub:
            yield hub, url or f"sqlite:///{hub.data_dir / 'govhub.db'}"
    finally:
        if base and name:
            drop_postgres(base, name)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _token(client: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return {"Authorization": f"Bearer {_ok(client.post('/auth/token', data=form))['access_token']}"}


@dataclass
class World:
    """What the writers need: an administrator, a provider bureau that also issues ID cards, a consumer
    department, a published conditional entry with a dataset, and a consumer's grant on it."""

    admin: dict[str, str]
    provider: dict[str, str]
    consumer: dict[str, str]
    provider_id: str
    entry_id: str
    grant_id: str
    people: list[str] = field(default_factory=list)


def _department(client: httpx.Client, admin: dict[str, str], name: str) -> tuple[str, str, dict[str, str]]:
    body = {"code": uscc(region="110100"), "name": name, "level": "city", "region_code": "110100"}
    department = _ok(client.post("/departments", json=body, headers=admin), 201)
    created = _ok(client.post("/clients", json={"name": name + "系统", "roles": ["department_system"],
                                                "department_id": department["id"]}, headers=admin), 201)  # fmt: skip
    return department["id"], department["code"], _token(client, created["client_id"], created["client_secret"])


def _request_body(entry_id: str) -> dict[str, Any]:
    return {
        "resource_id": entry_id, "items": ["身份证号", "姓名"], "purpose": "低保资格审核", "scenario": "窗口受理低保申请",
        "legal_basis": "《社会救助暂行办法》第十一条", "contact_name": "李四", "contact_phone": "010-12345678",
        "valid_until": (date.today() + timedelta(days=300)).isoformat(),
    }  # fmt: skip


def _published_entry(client: httpx.Client, admin: dict[str, str], provider: dict[str, str]) -> dict[str, Any]:
    """A conditional catalogue entry of the provider's, published."""
    body = entry_body(sharing_type="conditional", conditions="仅限政务服务办理")
    entry: dict[str, Any] = _ok(client.post("/catalog/entries", json=body, headers=provider), 201)
    _ok(client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider))
    _ok(client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))
    return entry


def build_world(client: httpx.Client) -> World:
    admin = _token(client, ADMIN_ID, ADMIN_SECRET)
    provider_id, provider_code, provider = _department(client, admin, "市公安局")
    _, _, consumer = _department(client, admin, "市民政局")
    entry = _published_entry(client, admin, provider)
    people = [citizen_id(region="110101", born=date(1990, 3, 1 + n)) for n in range(20)]
    csv = "身份证号,姓名,户籍地址,出生日期\n" + "".join(
        f"{p},姓名{n},北京市东城区{n}号,1990-03-07\n" for n, p in enumerate(people)
    )
    _ok(client.post(f"/catalog/entries/{entry['id']}/datasets", files={"file": ("people.csv", csv.encode(), "text/csv")},
                    headers=provider), 201)  # fmt: skip
    request = _ok(client.post("/exchange/requests", json=_request_body(entry["id"]), headers=consumer), 201)
    _ok(client.post(f"/exchange/requests/{request['id']}/accept", headers=admin))
    approved = _ok(client.post(f"/exchange/requests/{request['id']}/decision", json={"approve": True}, headers=provider))
    # The provider bureau issues 居民身份证 with a seal of its own.
    _ok(client.post("/certhub/types/examples", headers=admin))
    _ok(client.post("/seals", json=seal_body(provider_id, seal_type="电子证照专用章"), headers=admin), 201)
    _ok(client.patch(f"/certhub/types/{ID_CARD}", json={"issuer_codes": [provider_code]}, headers=admin))
    return World(admin, provider, consumer, provider_id, entry["id"], approved["grant_id"], people)


Write = Callable[[httpx.Client, int], httpx.Response]


def mixed_writes(world: World) -> list[tuple[str, int, Write]]:
    """The kinds of write the load mixes: (name, status expected, call)."""

    def department(client: httpx.Client, _n: int) -> httpx.Response:
        body = {"code": uscc(region="110100"), "name": "并发测试局", "level": "city", "region_code": "110100"}
        return client.post("/departments", json=body, headers=world.admin)

    def api_client(client: httpx.Client, n: int) -> httpx.Response:
        body = {"name": f"并发测试系统{n}", "roles": ["department_system"], "department_id": world.provider_id}
        return client.post("/clients", json=body, headers=world.admin)

    def sharing_request(client: httpx.Client, _n: int) -> httpx.Response:
        return client.post("/exchange/requests", json=_request_body(world.entry_id), headers=world.consumer)

    def certificate(client: httpx.Client, _n: int) -> httpx.Response:
        holder = citizen_id()
        body = {"type_code": ID_CARD, "holder": {"code": holder, "kind": "person", "name": "张三"}, "face": id_face(holder),
                "render_pdf": False}  # fmt: skip
        return client.post("/certhub/certificates", json=body, headers=world.provider)

    def lookup(client: httpx.Client, n: int) -> httpx.Response:
        body = {"params": {"身份证号": world.people[n % len(world.people)]}, "use_cause": "低保审核"}
        return client.post(f"/exchange/grants/{world.grant_id}/lookup", json=body, headers=world.consumer)

    return [
        ("POST /departments", 201, department),
        ("POST /clients", 201, api_client),
        ("POST /exchange/requests", 201, sharing_request),
        ("POST /certhub/certificates", 201, certificate),
        ("POST /exchange/grants/{id}/lookup", 200, lookup),
    ]


@dataclass
class Load:
    done: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def run_writers(hub: HubProcess, writes: list[tuple[str, int, Write]], *, writers: int, each: int) -> Load:
    """`writers` threads with a connection each, started together, each making `each` writes of the kinds in turn."""
    load, lock = Load(), threading.Lock()
    start = threading.Barrier(writers)

    def writer(index: int) -> None:
        with httpx.Client(base_url=hub.base, timeout=60) as client:
            start.wait()
            for n in range(each):
                name, status, call = writes[(index + n) % len(writes)]
                response = call(client, index * each + n)
                with lock:
                    if response.status_code == status:
                        load.done[name] += 1
                    else:
                        load.failures.append(f"{name}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return load


class EveryJob:
    """Runs every scheduled job of the hub over and over from another process (this one), as long as the
    load lasts: its clock jumps a day ahead on each round, so every job is due on every round."""

    def __init__(self, hub: HubProcess, database_url: str) -> None:
        settings = Settings(data_dir=hub.data_dir, database_url=database_url, run_scheduler=False)
        self.engine = make_engine(settings.effective_database_url)
        jobs = scheduled_jobs(vault=KeyVault.from_settings(settings), storage=make_store(settings), settings=settings)
        self.ran: Counter[str] = Counter()
        self.failures: list[str] = []
        self.rounds = 0
        self.runner = LeaseRunner(
            make_sessionmaker(self.engine),
            [self._recorded(job) for job in jobs],
            clock=lambda: utcnow() + timedelta(days=self.rounds),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _recorded(self, job: Job) -> Job:
        def run(db: Session) -> object:
            try:
                result = job.run(db)
                db.flush()
            except Exception as exc:
                self.failures.append(f"{job.name}: {type(exc).__name__}: {exc}")
                raise
            self.ran[job.name] += 1
            return result

        return Job(job.name, job.interval_seconds, run)

    def _run(self) -> None:
        while not self._stop.is_set() or self.rounds == 0:
            self.rounds += 1
            self.runner.run_due()

    def __enter__(self) -> EveryJob:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        self.engine.dispose()


def _hub_job_failures(client: httpx.Client) -> list[str]:
    metrics = client.get("/metrics").text
    return [line for line in metrics.splitlines() if line.startswith("govhub_job_runs_total{") and 'outcome="failure"' in line
            and not line.endswith(" 0.0")]  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2], ids=["one process", "two worker processes"])
def test_sixteen_writers_of_mixed_kinds_while_every_scheduled_job_runs_get_no_error(workers: int) -> None:
    with served(workers=workers) as (hub, database_url):
        with httpx.Client(base_url=hub.base, timeout=60) as client:
            world = build_world(client)
        writes = mixed_writes(world)
        with EveryJob(hub, database_url) as jobs:
            load = run_writers(hub, writes, writers=WRITERS, each=10)
        with httpx.Client(base_url=hub.base, timeout=60) as client:
            hub_failures = _hub_job_failures(client) if workers == 1 else []

    assert load.failures == []  # not one 503, 500 or 409: every write waited its turn
    assert sum(load.done.values()) == WRITERS * 10 and set(load.done) == {name for name, _, _ in writes}
    assert jobs.failures == [] and hub_failures == []
    assert set(jobs.ran) == set(jobs.runner.jobs)  # every job ran during the load


def test_twenty_parallel_approvals_of_one_request_give_one_200_and_nineteen_409() -> None:
    with served(scheduler=False) as (hub, _):
        with httpx.Client(base_url=hub.base, timeout=60) as client:
            admin = _token(client, ADMIN_ID, ADMIN_SECRET)
            _, _, provider = _department(client, admin, "市公安局")
            _, _, consumer = _department(client, admin, "市民政局")
            entry = _published_entry(client, admin, provider)
            request = _ok(client.post("/exchange/requests", json=_request_body(entry["id"]), headers=consumer), 201)
            _ok(client.post(f"/exchange/requests/{request['id']}/accept", headers=admin))

        approve: Write = lambda client, _n: client.post(  # noqa: E731
            f"/exchange/requests/{request['id']}/decision", json={"approve": True}, headers=provider
        )
        statuses: list[int] = []
        lock, start = threading.Lock(), threading.Barrier(20)

        def approver() -> None:
            with httpx.Client(base_url=hub.base, timeout=60) as client:
                start.wait()
                status = approve(client, 0).status_code
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=approver) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=hub.base, timeout=60) as client:
            grants = _ok(client.get("/exchange/grants", headers=consumer))["items"]

    assert sorted(statuses) == [200] + [409] * 19
    assert len(grants) == 1  # one grant, not two


def test_the_cli_creates_a_client_while_the_hub_serves_and_writes() -> None:
    with served(scheduler=True) as (hub, _):
        with httpx.Client(base_url=hub.base, timeout=60) as client:
            admin = _token(client, ADMIN_ID, ADMIN_SECRET)
            department_id, _, _ = _department(client, admin, "市公安局")
        world = World(admin, {}, {}, department_id, "", "")
        writes = [w for w in mixed_writes(world) if w[0] in ("POST /departments", "POST /clients")]
        commands: list[Any] = []

        def cli() -> None:
            time.sleep(0.5)  # the writers are at it
            for n in range(3):
                commands.append(hub.govhub("clients", "create", "--name", f"命令行系统{n}", "--role", "department_system",
                                           "--department", department_id))  # fmt: skip

        beside = threading.Thread(target=cli)
        beside.start()
        load = run_writers(hub, writes, writers=8, each=12)
        beside.join()

    assert [c.returncode for c in commands] == [0, 0, 0], [c.stderr for c in commands]
    assert all('"client_secret"' in c.stdout for c in commands)
    assert load.failures == []
