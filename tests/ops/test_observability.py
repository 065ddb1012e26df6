"""Scenarios of logs and metrics: one request id everywhere, no identifiers or secrets in logs, valid metrics."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.audit import AuditRecord
from ops.logs import JsonFormatter
from tests.conftest import Hub
from tests.factories import citizen_id, uscc


class Lines(logging.Handler):
    """Collects the JSON lines the hub writes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def parsed(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture()
def log_lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_one_request_id_ties_the_log_line_the_response_and_the_audit_record(
    client: TestClient, hub: Hub, db: Session, log_lines: Lines
) -> None:
    body = {"code": uscc(region="330000"), "name": "浙江省人力社保厅", "level": "province", "region_code": "330000"}
    created = client.post("/departments", headers={**hub.admin.headers, "X-Request-ID": "req-20261124-0001"}, json=body)
    assert created.status_code == 201 and created.headers["x-request-id"] == "req-20261124-0001"
    record = db.scalars(select(AuditRecord).where(AuditRecord.object_id == created.json()["id"])).one()
    assert record.request_id == "req-20261124-0001"
    access = [e for e in log_lines.parsed() if e["logger"] == "govhub.access" and e["request_id"] == "req-20261124-0001"]
    assert access and access[0]["status"] == 201 and access[0]["route"] == "/departments"

    refused = client.post("/departments", headers=hub.admin.headers, json={**body, "level": "galaxy"})
    assert refused.status_code == 422
    problem_id = refused.json()["request_id"]
    assert problem_id == refused.headers["x-request-id"]
    assert any(e["request_id"] == problem_id and e["status"] == 422 for e in log_lines.parsed())


def test_a_request_id_that_could_forge_log_lines_is_replaced(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": 'x"}\n{"level":"ERROR'})
    assert response.headers["x-request-id"].isalnum()


def test_personal_identifiers_are_masked_and_tokens_never_logged(client: TestClient, hub: Hub, log_lines: Lines) -> None:
    person = citizen_id()
    holder = hub.holder(person)
    token = holder.headers["Authorization"].removeprefix("Bearer ")
    client.get("/audit/records", headers=holder.headers)
    client.get("/audit/records", headers={"Authorization": f"Bearer {token}x"})  # a refused token
    log = logging.getLogger("govhub.test")
    log.warning("lookup for %s by %s", person, f"Authorization: Bearer {token}", extra={"holder": person, "phone": "13912345678"})
    log.info("client created", extra={"client_secret": "very-secret-value", "detail": {"password": "hunter2"}})
    try:
        raise ValueError(f"bad input {person} with token {token}")
    except ValueError:
        log.exception("failure")
    text = "\n".join(log_lines.lines)
    assert person not in text and token not in text
    assert "very-secret-value" not in text and "hunter2" not in text and "13912345678" not in text
    assert person[:6] + "********" + person[-4:] in text  # masked, still recognisable for support


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_metrics_name_the_business_figures_and_pass_promtool(client: TestClient, hub: Hub) -> None:
    client.post("/audit/log/checkpoint", headers=hub.admin.headers)
    text = client.get("/metrics").text
    families = _families(text)
    for name in (
        "govhub_http_requests_total",
        "govhub_sharing_request_events_total",
        "govhub_data_accesses_total",
        "govhub_certificate_events_total",
        "govhub_certificate_verification_seconds_bucket",
        "govhub_seal_uses_total",
        "govhub_audit_log_checkpoints_signed_total",
        "govhub_audit_log_entries",
    ):
        assert name in families or name.removesuffix("_total") in text, name
    assert families["govhub_audit_log_checkpoints_signed_total"][0][1] >= 1
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus); the exposition parsed above")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_counts_from_several_worker_processes_add_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    worker = textwrap.dedent(
        """
        import sys
        from ops import metrics
        for _ in range(int(sys.argv[1])):
            metrics.DATA_ACCESSES.labels("query", "success").inc()
            metrics.HTTP_LATENCY.labels("GET", "/grants").observe(0.02)
        metrics.GRANTS_ACTIVE.set(int(sys.argv[1]))
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for n in (3, 4, 5):
        subprocess.run([sys.executable, "-c", worker, str(n)], env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    from ops.metrics import render

    text = render()[0].decode()
    families = _families(text)
    [(labels, accesses)] = families["govhub_data_accesses_total"]
    assert labels == {"kind": "query", "outcome": "success"} and accesses == 12
    [(_, observed)] = families["govhub_http_request_duration_seconds_count"]
    assert observed == 12
    [(_, grants)] = families["govhub_grants_active"]
    assert grants == 5  # a state gauge keeps the latest value written, not a sum
    promtool = shutil.which("promtool")
    if promtool:
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_and_alerts_only_use_metrics_the_hub_exports() -> None:
    import re

    from prometheus_client import REGISTRY

    root = Path(__file__).resolve().parents[2] / "deploy"
    exported = {sample_name for family in REGISTRY.collect() for sample_name in [family.name, *(s.name for s in family.samples)]}
    exported |= {f"{name}_bucket" for name in exported} | {f"{name}_total" for name in exported}
    dashboard = (root / "grafana" / "govhub-dashboard.json").read_text()
    alerts = (root / "alerts.yml").read_text()
    used = set(re.findall(r"govhub_[a-z_]+", dashboard + alerts)) - {"govhub_ops"}
    assert used, "the dashboard queries no govhub metric"
    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"
    assert len(json.loads(dashboard)["panels"]) >= 10


def test_no_metric_carries_a_label_prometheus_sets_on_every_target() -> None:
    """A `job` or `instance` label of ours would be renamed `exported_job` by Prometheus, and the alert
    rules and dashboard that read it would see the scrape job ("govhub") instead."""
    from prometheus_client.metrics import MetricWrapperBase

    from ops import metrics

    labelled = {name: set(m._labelnames) for name, m in vars(metrics).items() if isinstance(m, MetricWrapperBase)}
    assert labelled["JOB_RUNS"] == {"task", "outcome"}
    assert {name: labels & {"job", "instance"} for name, labels in labelled.items() if labels & {"job", "instance"}} == {}


def test_every_alert_rule_fires_when_it_should_and_only_then() -> None:
    """deploy/alerts.test.yml has a promtool unit test for every rule of deploy/alerts.yml, and they pass."""
    yaml = pytest.importorskip("yaml")
    root = Path(__file__).resolve().parents[2] / "deploy"
    rules = {rule["alert"] for group in yaml.safe_load((root / "alerts.yml").read_text())["groups"] for rule in group["rules"]}
    tested = {
        case["alertname"]
        for test in yaml.safe_load((root / "alerts.test.yml").read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert rules == tested, f"alerts without a firing test: {sorted(rules - tested)}"
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus); CI installs it")
    checked = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"], cwd=root, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
