"""Scenarios of deployment: replicas starting together, and the compose file an operator runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from govhub import __version__
from ops.db import make_engine
from tests.migrations import head_revisions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def empty_database(tmp_path: Path) -> Iterator[str]:
    base = os.environ.get("GOVHUB_TEST_DATABASE_URL")
    if base:
        from ops.hubprocess import drop_postgres, fresh_postgres

        url, name = fresh_postgres(base)
        yield url
        drop_postgres(base, name)
    else:
        yield f"sqlite:///{tmp_path}/replicas-{uuid.uuid4().hex}.db"


def test_two_replicas_starting_together_migrate_once_and_share_one_admin_and_one_master_key(
    empty_database: str, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")}
    env.update({"GOVHUB_DATABASE_URL": empty_database, "GOVHUB_DATA_DIR": str(shared)})
    replicas = [
        subprocess.Popen(
            [sys.executable, "-m", "govhub.cli", "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=120) for r in replicas]
    assert [r.returncode for r in replicas] == [0, 0], outputs
    announced = [out.decode() for out, _ in outputs if b"client_secret" in out]
    assert len(announced) == 1  # exactly one replica created (and printed) the first admin
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            versions = {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
            admins = connection.execute(text("SELECT count(*) FROM api_clients")).scalar()
            keys = connection.execute(text("SELECT count(*) FROM hub_signing_keys")).scalar()
    finally:
        engine.dispose()
    assert versions == head_revisions()
    assert admins == 1 and keys == 1
    assert [p.name for p in shared.iterdir() if "master.key" in p.name] == ["master.key"]


def _compose_services() -> dict[str, Any]:
    """The services of docker-compose.yml as `docker-compose config` resolves them (skips without it)."""
    yaml = pytest.importorskip("yaml")
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose (Debian package docker-compose) is not installed; CI installs it")
    checked = subprocess.run([compose, "config"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    return dict(yaml.safe_load(checked.stdout)["services"])


def test_the_compose_file_runs_two_hubs_on_postgres_and_minio_with_prometheus() -> None:
    yaml = pytest.importorskip("yaml")
    services = _compose_services()
    assert {"hub-1", "hub-2", "postgres", "minio", "minio-init", "prometheus"} <= set(services)
    for name in ("hub-1", "hub-2"):
        env = services[name]["environment"]
        assert env["GOVHUB_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["GOVHUB_DATABASE_URL"]
        assert env["GOVHUB_STORAGE_BACKEND"] == "s3" and env["GOVHUB_S3_ENDPOINT"] == "minio:9000"
        assert services[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert "mc mb" in " ".join(services["minio-init"]["command"])
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["hub-1:8000", "hub-2:8000"]


def test_every_image_is_pinned_and_grafana_comes_up_with_prometheus_and_the_dashboard() -> None:
    yaml = pytest.importorskip("yaml")
    services = _compose_services()
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image} is not pinned"
    assert services["hub-1"]["image"] == f"govhub:{__version__}"

    grafana = services["grafana"]
    mounts = dict(_bind_mount(volume) for volume in grafana["volumes"])
    provisioning = Path(mounts["/etc/grafana/provisioning"])
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(s["type"], s["url"], s["isDefault"]) for s in sources] == [("prometheus", "http://prometheus:9090", True)]
    assert "prometheus" in services and "9090" in str(services["prometheus"].get("ports", ""))
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "govhub.yml").read_text())["providers"]
    folder = provider["options"]["path"]
    dashboards = {target: Path(source) for target, source in mounts.items() if target.startswith(folder + "/")}
    assert [path.name for path in dashboards.values()] == ["govhub-dashboard.json"]
    assert json.loads(next(iter(dashboards.values())).read_text())["uid"] == "govhub-ops"


def _bind_mount(volume: str | dict[str, str]) -> tuple[str, str]:
    """(target, source) of a compose volume, in the short ("src:target:ro") or the long form."""
    if isinstance(volume, dict):
        return volume["target"], volume["source"]
    source, target, *_ = volume.split(":")
    return target, source
