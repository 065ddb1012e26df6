"""Command-line commands of the exchange domain (registered by govhub.cli)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this domain's commands to `govhub`."""
