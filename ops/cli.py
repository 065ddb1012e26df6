"""Support for command-line commands: settings, a session, and clear failures."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from ops.auth import Principal, Role
from ops.config import Settings, get_settings
from ops.db import make_engine, make_sessionmaker, reading, writing
from ops.errors import DatabaseBusy, HubError, database_error

CLI_ADMIN = Principal(subject="cli", roles=frozenset({Role.PLATFORM_ADMIN}))


def load_settings() -> Settings:
    """The settings, or exit with a message naming each bad variable."""
    try:
        return get_settings()
    except ValidationError as exc:
        lines = [f"  GOVHUB_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise SystemExit("govhub: invalid configuration:\n" + "\n".join(lines)) from None


def open_session(settings: Settings) -> Session:
    engine = make_engine(settings.effective_database_url, busy_timeout=settings.database_busy_timeout_seconds)
    return make_sessionmaker(engine)()


def with_db(
    fn: Callable[[Session, Settings, argparse.Namespace], None], *, writes: bool = True
) -> Callable[[argparse.Namespace], None]:
    """Run a command in one transaction: committed on success, explained and rolled back on error.
    A command that only reads (`writes=False`) never takes the database's write lock: it can run as
    long as it needs beside a serving hub without holding up its writes."""

    def run(args: argparse.Namespace) -> None:
        settings = load_settings()
        with open_session(settings) as db, writing() if writes else reading():
            try:
                fn(db, settings, args)
                db.commit()
            except HubError as exc:
                db.rollback()
                raise SystemExit(f"govhub: {exc.detail}") from None
            except (OperationalError, ProgrammingError) as exc:
                db.rollback()
                if isinstance(database_error(exc), DatabaseBusy):
                    raise SystemExit(
                        "govhub: the database is busy: other writers (a serving hub?) held it for more than "
                        f"{settings.database_busy_timeout_seconds:g} s; retry, or raise GOVHUB_DATABASE_BUSY_TIMEOUT_SECONDS"
                    ) from None
                raise SystemExit(
                    f"govhub: the database cannot be used ({type(exc.orig).__name__}: {exc.orig}); "
                    "is it reachable, and has `govhub db upgrade` been run?"
                ) from None
            except ValidationError as exc:
                db.rollback()
                lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
                raise SystemExit("govhub: invalid input:\n" + "\n".join(lines)) from None

    return run


def describe_from_help(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a description its one-line help as one, so that each
    `govhub … --help` screen says what the command does (tests/ops/test_cli_help.py checks it)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for choice in action._choices_actions:
            sub = action.choices[choice.dest]
            if not sub.description and choice.help:
                text = choice.help[0].upper() + choice.help[1:]
                sub.description = text if text.endswith((".", "。", ")")) else text + "."
            describe_from_help(sub)
