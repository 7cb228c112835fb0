"""Demo data seeding: licenses of every city and desk accounts (demo network only)."""

from __future__ import annotations

from gateway.config import NodeConfig


def seed_demo(configs: list[NodeConfig]) -> None:
    """Seed each demo node's stores once; later runs leave existing data alone."""
    del configs
