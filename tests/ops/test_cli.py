"""The govhub command, as an operator uses it on a fresh data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import jwt

from tests.conftest import MASTER_KEY
from tests.factories import uscc


def _govhub(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOVHUB_DATA_DIR": str(data_dir), "GOVHUB_MASTER_KEY": MASTER_KEY, **(env or {})}
    env.pop("GOVHUB_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "govhub.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_an_operator_sets_up_a_department_and_a_client_from_the_shell(tmp_path: Path) -> None:
    first = _govhub(tmp_path, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "client_secret:" in first.stdout  # the first admin is printed once...
    again = _govhub(tmp_path, "db", "upgrade")
    assert "client_secret:" not in again.stdout  # ...and never again

    code = uscc(region="440300")
    created = _govhub(
        tmp_path,
        "departments",
        "create",
        "--code",
        code,
        "--name",
        "深圳市政务服务数据管理局",
        "--level",
        "city",
        "--region",
        "440300",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["code"] == code

    client = _govhub(tmp_path, "clients", "create", "--name", "一网通办系统", "--role", "department_system", "--department", code)
    assert client.returncode == 0, client.stderr
    client_id = json.loads(client.stdout)["client_id"]

    token = _govhub(tmp_path, "token", client_id)
    assert token.returncode == 0, token.stderr
    claims = jwt.decode(token.stdout.strip(), options={"verify_signature": False})
    assert claims["sub"] == client_id and claims["roles"] == ["department_system"]

    revoked = _govhub(tmp_path, "clients", "revoke", client_id, "--reason", "测试结束")
    assert revoked.returncode == 0
    assert "revoked" in _govhub(tmp_path, "clients", "list").stdout


def test_bad_input_on_the_command_line_is_explained(tmp_path: Path) -> None:
    _govhub(tmp_path, "db", "upgrade")
    bad = _govhub(
        tmp_path,
        "departments",
        "create",
        "--code",
        "91350100M000100Y44",
        "--name",
        "某局",
        "--level",
        "city",
        "--region",
        "350100",
    )
    assert bad.returncode != 0 and "GB 32100" in bad.stderr
    env_bad = subprocess.run(
        [sys.executable, "-m", "govhub.cli", "departments", "list"],
        env={**os.environ, "GOVHUB_DATA_DIR": str(tmp_path), "GOVHUB_MASTER_KEY": "short"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert env_bad.returncode != 0 and "GOVHUB_MASTER_KEY" in env_bad.stderr


def test_audit_verify_reports_a_cut_off_tail_from_the_shell(tmp_path: Path) -> None:
    assert _govhub(tmp_path, "db", "upgrade").returncode == 0

    def departments(n: int) -> None:
        for _ in range(n):
            code = uscc(region="440300")
            made = _govhub(
                tmp_path, "departments", "create", "--code", code, "--name", "部门", "--level", "city", "--region", "440300"
            )
            assert made.returncode == 0, made.stderr

    def checkpoint() -> int:
        signed = _govhub(tmp_path, "audit", "checkpoint")
        assert signed.returncode == 0, signed.stderr
        return int(signed.stdout.splitlines()[1])

    departments(1)
    kept = checkpoint()
    departments(1)
    newest = checkpoint()
    assert newest > kept
    ok = _govhub(tmp_path, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["published_checkpoints"] == 2

    with sqlite3.connect(tmp_path / "govhub.db") as db:
        for table in ("audit_records", "audit_log_entries", "audit_log_nodes", "audit_log_checkpoints"):
            for verb in ("update", "delete"):
                db.execute(f"DROP TRIGGER {table}_no_{verb}")
        last = db.execute('SELECT min(audit_id) FROM audit_log_entries WHERE "index" >= ?', (kept,)).fetchone()[0]
        db.execute("DELETE FROM audit_records WHERE id >= ?", (last,))
        db.execute('DELETE FROM audit_log_entries WHERE "index" >= ?', (kept,))
        db.execute("DELETE FROM audit_log_nodes WHERE ((position + 1) << level) > ?", (kept,))
        db.execute("DELETE FROM audit_log_checkpoints WHERE tree_size > ?", (kept,))

    cut = _govhub(tmp_path, "audit", "verify")
    assert cut.returncode == 1
    report = json.loads(cut.stdout)
    assert report["ok"] is False and [p["kind"] for p in report["problems"]] == ["truncated"]
    assert f"covers {newest} entries, but the database holds {kept}" in report["problems"][0]["detail"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_directory_is_readable_by_the_hubs_user_only_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "govhub-data"
    env = {**os.environ, "GOVHUB_DATA_DIR": str(data_dir)}
    for name in ("GOVHUB_DATABASE_URL", "GOVHUB_MASTER_KEY", "GOVHUB_STORAGE_DIR"):
        env.pop(name, None)
    # A permissive umask (000): whatever the hub makes is private all the same.
    script = (
        "import os, runpy, sys; os.umask(0); sys.argv[1:] = ['db', 'upgrade']; "
        "runpy.run_module('govhub.cli', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr

    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "govhub.db") == 0o600
    assert _mode(data_dir / "master.key") == 0o600
    # The write-ahead log and its index take the database's mode: seen while a connection has them open.
    with sqlite3.connect(data_dir / "govhub.db") as connection:
        connection.execute("CREATE TABLE probe (x)")
        for suffix in ("-wal", "-shm"):
            assert _mode(data_dir / f"govhub.db{suffix}") == 0o600, suffix


def test_a_master_key_left_readable_by_others_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "govhub-data"
    data_dir.mkdir()
    key = data_dir / "master.key"
    key.write_text(MASTER_KEY)
    key.chmod(0o644)
    env = {**os.environ, "GOVHUB_DATA_DIR": str(data_dir)}
    env.pop("GOVHUB_DATABASE_URL", None)
    env.pop("GOVHUB_MASTER_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "govhub.cli", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert _mode(key) == 0o600
    assert key.read_text() == MASTER_KEY


def test_the_first_administrators_secret_is_printed_only_when_the_hub_generated_it(tmp_path: Path) -> None:
    chosen = "operator-chosen-secret-0123456789"
    env = {"GOVHUB_BOOTSTRAP_ADMIN_CLIENT_ID": "platform-admin", "GOVHUB_BOOTSTRAP_ADMIN_SECRET": chosen}
    first = _govhub(tmp_path / "chosen", "db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "platform-admin" in first.stdout  # the operator learns which client was made...
    assert chosen not in first.stdout and "client_secret:" not in first.stdout  # ...not their own secret, in the log

    generated = _govhub(tmp_path / "generated", "db", "upgrade")
    assert "client_secret:" in generated.stdout
