"""The `govhub` command: serve the hub and administer it from a shell."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from catalog_registry import cli as catalog_cli
from certhub import cli as certhub_cli
from exchange import cli as exchange_cli
from govhub.archives import ARCHIVE_PROFILES
from govhub.timestamping import configure_time_stamps
from ops.archive import cli as archive_cli
from ops.auditlog import cli as auditlog_cli
from ops.cli import CLI_ADMIN, describe_from_help, load_settings, with_db
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import make_engine, make_sessionmaker
from ops.divisions import cli as divisions_cli
from ops.workdays import cli as workdays_cli
from ops.workdays.service import CalendarListener
from seal import cli as seal_cli

if TYPE_CHECKING:
    from fastapi import FastAPI


def _print_admin(created: Any, settings: Settings) -> None:
    """Say that the first administrator was made; its secret only when the hub generated it (a secret the
    operator chose in GOVHUB_BOOTSTRAP_ADMIN_SECRET is theirs already and stays out of the logs)."""
    if created is None:
        return
    generated = not settings.bootstrap_admin_secret.get_secret_value()
    print("=" * 72)
    print("First platform administrator client", end=" ")
    print("(shown once; store the secret now):" if generated else "(its secret is GOVHUB_BOOTSTRAP_ADMIN_SECRET):")
    print(f"  client_id:     {created.client.client_id}")
    if generated:
        print(f"  client_secret: {created.secret}")
    print("=" * 72, flush=True)


WORKER_HEALTHCHECK_SECONDS = 60


def serving_app() -> FastAPI:
    """The app of one `govhub serve --workers N` worker process, tuned for serving like a single process;
    the worker ends when its master does (a master killed with SIGKILL leaves no worker behind)."""
    import multiprocessing

    from govhub.app import create_app
    from ops.runtime import end_with_parent, tune_gc_for_serving

    master = multiprocessing.parent_process()  # known from the start: it may have died while we imported
    end_with_parent(master.pid if master is not None else None)
    app = create_app()
    tune_gc_for_serving()
    return app


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from govhub.app import create_app
    from govhub.database import prepare
    from ops.logs import configure_logging
    from ops.runtime import tune_gc_for_serving

    settings = load_settings().bound_to(args.host, args.port)
    configure_logging(settings.log_level)
    # Migrations on an engine of their own, without the serving engine's statement and lock timeouts
    # (a migration may run long, and waits for the other processes' migrations).
    migrations = make_engine(settings.effective_database_url, busy_timeout=settings.database_busy_timeout_seconds)
    _print_admin(prepare(migrations, settings), settings)
    migrations.dispose()
    print(f"govhub listening on {args.host}:{args.port}, reached at {settings.public_url}", flush=True)
    print(f"  console: {settings.public_url}/console/   API docs: {settings.public_url}/docs", flush=True)
    if args.workers > 1:
        _fresh_metrics_dir(settings)
        # The workers read the environment: they advertise the same address.
        os.environ["GOVHUB_PUBLIC_URL"] = settings.public_url
        # Each worker builds its own app from the same environment; metrics merge across them.
        uvicorn.run(
            "govhub.cli:serving_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,
            access_log=False,
            # A worker answers the master's health checks only once it has imported the hub (several
            # seconds of CPU, more on a busy machine); uvicorn's 5 s default killed workers still starting.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )
        return
    app = create_app(settings)
    tune_gc_for_serving()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


def _fresh_metrics_dir(settings: Settings) -> None:
    """Use (and empty) a prometheus-client multiprocess directory for the workers."""
    import os
    import shutil
    from pathlib import Path

    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.data_dir / "prometheus")
    if directory.exists():
        for child in directory.iterdir():
            if child.is_file():
                child.unlink()
            else:
                shutil.rmtree(child)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _runner(settings: Settings) -> Any:
    from govhub.app import scheduled_jobs
    from ops.scheduler import LeaseRunner
    from ops.storage import make_store

    engine = make_engine(settings.effective_database_url, busy_timeout=settings.database_busy_timeout_seconds)
    jobs = scheduled_jobs(vault=KeyVault.from_settings(settings), storage=make_store(settings), settings=settings)
    return LeaseRunner(make_sessionmaker(engine), jobs)


def cmd_jobs_status(_args: argparse.Namespace) -> None:
    runner = _runner(load_settings())
    rows = runner.status()
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    never = sorted(set(runner.jobs) - {row["name"] for row in rows})
    if not rows:
        print("no job has run yet: a serving hub runs them on schedule, `govhub jobs run NAME` runs one now", file=sys.stderr)
    if never:
        print(f"never run: {', '.join(never)}", file=sys.stderr)


def cmd_jobs_run(args: argparse.Namespace) -> None:
    runner = _runner(load_settings())
    if args.name is None:
        for name in sorted(runner.jobs):
            print(name)
        return
    if args.name not in runner.jobs:
        raise SystemExit(f"govhub: no job {args.name!r}; jobs are: {', '.join(sorted(runner.jobs))}")
    if not runner.run_once(args.name):
        raise SystemExit(f"govhub: {args.name} is not due or another process is running it")
    print(json.dumps(next(r for r in runner.status() if r["name"] == args.name), ensure_ascii=False))


def cmd_db_upgrade(_args: argparse.Namespace) -> None:
    from govhub.database import prepare

    settings = load_settings()
    engine = make_engine(settings.effective_database_url, busy_timeout=settings.database_busy_timeout_seconds)
    _print_admin(prepare(engine, settings), settings)
    print("database is at the latest schema")


def _department_id(db: Session, ref: str | None) -> str | None:
    from ops.identity import repository

    if not ref:
        return None
    department = repository.department_by_id(db, ref) or repository.department_by_code(db, ref.upper())
    if department is None:
        raise SystemExit(f"govhub: no department with id or code {ref}")
    return department.id


def departments_create(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    from ops.identity import service
    from ops.identity.schemas import DepartmentCreate

    data = DepartmentCreate(
        code=args.code, name=args.name, level=args.level, region_code=args.region, parent_id=_department_id(db, args.parent)
    )
    department = service.create_department(db, who=CLI_ADMIN, data=data)
    print(json.dumps({"id": department.id, "code": department.code, "name": department.name}, ensure_ascii=False))


def departments_list(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from ops.identity.models import Department

    for d in db.scalars(select(Department).order_by(Department.created_at)):
        print(f"{d.id}  {d.code}  {d.level:<9} {d.region_code}  {d.name}")


def clients_create(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    from ops.identity import service
    from ops.identity.schemas import ClientCreate

    data = ClientCreate(name=args.name, roles=args.role, department_id=_department_id(db, args.department))
    created = service.create_client(db, who=CLI_ADMIN, data=data)
    print(
        json.dumps(
            {"client_id": created.client.client_id, "client_secret": created.secret, "roles": created.client.roles},
            ensure_ascii=False,
        )
    )


def clients_revoke(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    from ops.identity import service

    client = service.revoke_client(db, who=CLI_ADMIN, client_id=args.client_id, reason=args.reason)
    print(f"revoked {client.client_id}")


def clients_list(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from ops.identity.models import ApiClient

    for c in db.scalars(select(ApiClient).order_by(ApiClient.created_at)):
        state = "revoked" if c.revoked_at else "active"
        print(f"{c.client_id}  {state:<7}  {','.join(c.roles):<30} {c.department_id or '-'}  {c.name}")


def cmd_token(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from ops import audit
    from ops.identity import repository, service
    from ops.identity.tokens import KeyRing

    keyring = KeyRing(make_sessionmaker(db.get_bind()), KeyVault.from_settings(settings), settings)  # type: ignore[arg-type]
    if args.holder:
        code = service.check_holder_token_request(settings, args.holder, args.kind)
        token = keyring.issue(
            subject=code,
            audience=settings.token_audience,
            issuer=settings.holder_issuer,
            ttl=settings.token_ttl_seconds,
            holder_kind=args.kind,
            name=args.name or code,
        )
        print(token)
        return
    if not args.client_id:
        raise SystemExit("govhub: give a client id, or --holder CODE")
    client = repository.client_by_client_id(db, args.client_id)
    if client is None or client.revoked_at is not None:
        raise SystemExit(f"govhub: no active client {args.client_id}")
    claims = service.token_claims(db, client)
    audit.record(db, actor=CLI_ADMIN, action="token.issue_cli", object_type="api_client", object_id=client.client_id)
    print(
        keyring.issue(
            subject=client.client_id,
            audience=settings.token_audience,
            issuer=settings.issuer,
            ttl=settings.token_ttl_seconds,
            **claims,
        )
    )


def keys_rotate(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    from ops import audit
    from ops.identity.tokens import rotate_signing_key

    key = rotate_signing_key(db, KeyVault.from_settings(settings), settings)
    audit.record(db, actor=CLI_ADMIN, action="signing_key.rotate", object_type="signing_key", object_id=key.kid)
    print(f"now signing with {key.kid}; previous keys verify until their tokens expire")


def keys_rewrap(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    from ops import audit
    from ops.auditlog.service import rewrap_log_keys
    from ops.identity.tokens import rewrap_signing_keys

    vault = KeyVault.from_settings(settings)
    changed = rewrap_signing_keys(db, vault) + rewrap_log_keys(db, vault=vault)
    audit.record(
        db, actor=CLI_ADMIN, action="master_key.rewrap", object_type="signing_key", object_id="*", detail={"rewrapped": changed}
    )
    print(f"re-wrapped {changed} key(s) under the current master key")


def calendar_listeners(settings: Settings) -> list[CalendarListener]:
    from govhub.app import calendar_listeners as listeners

    return listeners(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govhub",
        description="govhub: government data-sharing exchange and electronic-certificate hub. "
        "Configuration comes from GOVHUB_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="migrate the database and serve the API",
        description="Apply migrations, create the first admin if needed, and serve the API.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1); metrics are merged across them")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply every pending migration").set_defaults(func=cmd_db_upgrade)

    deps = sub.add_parser("departments", help="departments (组织机构)").add_subparsers(dest="sub", required=True)
    create = deps.add_parser("create", help="register a department")
    create.add_argument("--code", required=True, help="统一社会信用代码 (18 characters)")
    create.add_argument("--name", required=True, help="department name")
    create.add_argument(
        "--level", required=True, choices=["province", "city", "county", "township", "village"], help="administrative level"
    )
    create.add_argument("--region", required=True, help="6-digit administrative region code")
    create.add_argument("--parent", help="parent department id or code")
    create.set_defaults(func=with_db(departments_create))
    deps.add_parser("list", help="list departments").set_defaults(func=with_db(departments_list, writes=False))

    clients = sub.add_parser("clients", help="API clients").add_subparsers(dest="sub", required=True)
    ccreate = clients.add_parser("create", help="create a client and print its secret once")
    ccreate.add_argument("--name", required=True, help="what the client is")
    ccreate.add_argument(
        "--role",
        required=True,
        action="append",
        choices=["platform_admin", "department_admin", "department_system", "window"],
        help="a role (repeat for several)",
    )
    ccreate.add_argument("--department", help="department id or code (required except for platform admins)")
    ccreate.set_defaults(func=with_db(clients_create))
    revoke = clients.add_parser("revoke", help="revoke a client; its tokens stop working")
    revoke.add_argument("client_id", help="the client to revoke (see `govhub clients list`)")
    revoke.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    revoke.set_defaults(func=with_db(clients_revoke))
    clients.add_parser("list", help="list clients").set_defaults(func=with_db(clients_list, writes=False))

    token = sub.add_parser(
        "token",
        help="print an access token for a client (for scripting)",
        description="Print a token for an active client, or with --holder for a holder (built-in identity provider only).",
    )
    token.add_argument("client_id", nargs="?", help="an active client (see `govhub clients list`)")
    token.add_argument("--holder", help="holder code (公民身份号码 or 统一社会信用代码)")
    token.add_argument(
        "--kind",
        default="person",
        choices=["person", "enterprise"],
        help="with --holder: a citizen or an enterprise (default person)",
    )
    token.add_argument("--name", help="holder name")
    token.set_defaults(func=with_db(cmd_token))

    keys = sub.add_parser("keys", help="hub signing keys").add_subparsers(dest="sub", required=True)
    keys.add_parser("rotate", help="start signing tokens with a new key").set_defaults(func=with_db(keys_rotate))
    keys.add_parser(
        "rewrap", help="re-encrypt private keys under the current master key (after setting GOVHUB_PREVIOUS_MASTER_KEYS)"
    ).set_defaults(func=with_db(keys_rewrap))
    jobs = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="sub", required=True)
    jobs.add_parser(
        "status", help="when each job last ran and is next due, cluster-wide (one JSON line each); jobs never run are named"
    ).set_defaults(func=cmd_jobs_status)
    run = jobs.add_parser(
        "run",
        help="run one job now (if no other process holds it); without NAME, list the jobs",
        description="Run one scheduled job now, unless another process holds it. Without NAME, print every job's name.",
    )
    run.add_argument("name", nargs="?", help="the job's name (omit it to list the names)")
    run.set_defaults(func=cmd_jobs_run)
    workdays_cli.register(sub, calendar_listeners)
    divisions_cli.register(sub)
    for domain_cli in (auditlog_cli, catalog_cli, exchange_cli, seal_cli, certhub_cli):
        domain_cli.register(sub)
    archive_cli.register(sub, ARCHIVE_PROFILES)
    describe_from_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    configure_time_stamps()  # audit checkpoints are stamped (and checked) by the TSA the settings choose
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
