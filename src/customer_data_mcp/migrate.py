"""Apply ``migrations/*.sql`` idempotently, seed the lab data, or reset everything.

    python -m customer_data_mcp.migrate migrate   # create/upgrade tables
    python -m customer_data_mcp.migrate seed      # migrate + load the seed data (idempotent)
    python -m customer_data_mcp.migrate reset     # drop everything, migrate, seed
    python -m customer_data_mcp.migrate status    # applied migrations and row counts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import db

MIGRATIONS_DIR = db.REPO_ROOT / "migrations"
# Taken while migrating so two processes starting at once do not race on CREATE TABLE.
_MIGRATION_LOCK_ID = 5_202_611
TABLES = ("customers", "threads", "messages", "tickets", "refunds", "ticket_embeddings",
          "drafts", "audit_log", "outbox")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"No migrations found in {directory}")
    return files


def migrate(url: str | None = None) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied now."""
    applied_now = []
    with db.connect(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["name"] for r in conn.execute("SELECT name FROM schema_migrations")}
        for path in migration_files():
            if path.name in done:
                continue
            conn.execute(path.read_text())
            conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
            applied_now.append(path.name)
    return applied_now


def seed(url: str | None = None) -> dict:
    """Migrate, then load the seed data (rows that already exist are left alone)."""
    from .seed_data import load_seed

    migrate(url)
    with db.connect(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        load_seed(conn)
    return counts(url)


def reset(url: str | None = None) -> dict:
    """Drop every table (the whole ``public`` schema), then migrate and seed again."""
    with db.connect(url) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return seed(url)


def counts(url: str | None = None) -> dict:
    with db.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"]
                for t in TABLES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_data_mcp.migrate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["migrate", "seed", "reset", "status"])
    args = parser.parse_args(argv)
    if args.command == "migrate":
        applied = migrate()
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    elif args.command == "status":
        migrate()
        for table, n in counts().items():
            print(f"{table:18} {n}")
    else:
        result = seed() if args.command == "seed" else reset()
        for table, n in result.items():
            print(f"{table:18} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
