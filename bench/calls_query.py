"""The call list's speed on a big database: ``search_calls`` over 1,000,000 calls.

A benchmark, not a test: it prints a markdown table (and saves it with the query plans
in bench/out/). The database is seeded by ``calls_seed.py`` (see there what it holds).

Measured: ``search_calls`` (the function the API and the pages call, rows built and
all) through ``Database.read``, first page of 50, for:

* the target of issue 4: a substring (varied: part of an outside number, a surname,
  part of a SIP Call-ID), ``min_duration=60``, as a group's supervisor;
* the same substring for an administrator (the whole year, no scope);
* the list without filters, for an administrator and for a supervisor.

``--queries`` runs each (default 200); p50/p95/p99 in ms. PostgreSQL: a cluster of the
benchmark's own (``--postgres-settings test``: the test suite's settings, i.e. the
defaults with shared_buffers=128MB; ``tuned``: production-like settings for this 24 GB
machine, listed in calls_seed.py), or the empty database ``--postgres-url`` names.
``--keep DIR`` keeps the SQLite file and the cluster in DIR; ``--reuse`` measures what
DIR (or ``--postgres-url``) already holds instead of seeding again.

    .venv/bin/python bench/calls_query.py [--calls 1000000] [--backends sqlite,postgresql]
        [--queries 200] [--keep DIR [--reuse]] [--postgres-settings test|tuned]
        [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "src")]

from calls_seed import (  # noqa: E402
    LAST,
    TEST_SETTINGS,
    TUNED_SETTINGS,
    Cluster,
    seed_postgres,
    seed_sqlite,
)
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from callvault.db import Database  # noqa: E402
from callvault.db.accounts import User  # noqa: E402
from callvault.db.models import Call  # noqa: E402
from callvault.web.calls_query import CallFilter, filter_conditions, search_calls  # noqa: E402
from callvault.web.principal import Principal, principal_of  # noqa: E402

TARGET = "substring + min_duration=60, a group's supervisor"


@dataclass
class Samples:
    """Values of the seeded calls, to search for (so every search finds something)."""

    numbers: list[str]
    call_ids: list[str]


def samples_of(database: Database) -> Samples:
    def read(db: Session) -> Samples:
        connection = db.connection()
        numbers = connection.exec_driver_sql(
            "SELECT address FROM participant WHERE id - (id / 997) * 997 = 0"
            " AND substr(address, 1, 1) = '+'"
        )
        call_ids = connection.exec_driver_sql(
            "SELECT sip_call_id FROM segment WHERE id - (id / 997) * 997 = 0"
        )
        return Samples([n for (n,) in numbers], [c for (c,) in call_ids])

    return database.read(read)


def needles(samples: Samples, count: int, seed: int = 11) -> list[str]:
    """Varied substrings: part of an outside number, a surname, part of a SIP Call-ID."""
    rng = random.Random(seed)
    found: list[str] = []
    for n in range(count):
        kind = n % 3
        if kind == 0:
            number = rng.choice(samples.numbers)
            width = rng.randint(5, 8)
            start = rng.randrange(2, len(number) - width + 1)
            found.append(number[start : start + width])
        elif kind == 1:
            found.append(rng.choice(LAST))
        else:
            call_id = rng.choice(samples.call_ids)
            start = rng.randrange(0, 10)
            found.append(call_id[start : start + rng.randint(6, 10)])
    return found


def _principal(database: Database, login: str) -> Principal:
    def load(db: Session) -> Principal:
        user = db.scalars(select(User).where(User.username == login)).one()
        return principal_of(db, user, "session")

    return database.read(load)


def _percentile(times: list[float], p: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _cases(database: Database, samples: Samples, count: int) -> list[tuple[str, Principal, Any]]:
    """(name, viewer, n -> query string) of each measured list."""
    supervisor, admin = _principal(database, "sup7"), _principal(database, "root")
    words = needles(samples, count)
    return [
        (TARGET, supervisor, lambda n: f"q={words[n]}&min_duration=60"),
        ("substring, administrator (whole database)", admin, lambda n: f"q={words[n]}"),
        ("no filter, administrator", admin, lambda n: ""),
        ("no filter, a group's supervisor", supervisor, lambda n: ""),
    ]


def measure(database: Database, samples: Samples, count: int) -> list[tuple[str, list[float], int]]:
    results = []
    for name, who, query in _cases(database, samples, count):

        def page(n: int, who: Principal = who, query: Callable[[int], str] = query) -> int:
            flt = CallFilter.parse(query(n))
            return len(database.read(lambda db: search_calls(db, who, flt, limit=50)).items)

        page(0)  # warm the caches once
        times: list[float] = []
        rows = 0
        for n in range(count):
            began = time.perf_counter()
            rows += page(n)
            times.append((time.perf_counter() - began) * 1000)
        results.append((name, times, rows))
        print(f"  {name}: p95 {_percentile(times, 95):.1f} ms", file=sys.stderr, flush=True)
    return results


def explain(database: Database, samples: Samples) -> str:
    """The plans of the main statement of each case (one needle), as the server ran them."""
    parts: list[str] = []
    for name, who, query in _cases(database, samples, 1):
        flt = CallFilter.parse(query(0))

        def plan(db: Session, who: Principal = who, flt: CallFilter = flt) -> str:
            statement = (
                select(Call.id)
                .where(*filter_conditions(db, who, flt))
                .order_by(Call.started_at.desc(), Call.id.desc())
                .limit(51)
            )
            dialect = db.get_bind().dialect
            sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            if dialect.name == "sqlite":
                prefix = "EXPLAIN QUERY PLAN "
            else:
                prefix = "EXPLAIN (ANALYZE, BUFFERS) "
            rows = db.connection().exec_driver_sql(prefix + sql)
            return "\n".join(" | ".join(str(c) for c in row) for row in rows)

        parts.append(f"-- {name}: {query(0) or '(no filter)'}\n{database.read(plan)}")
    return "\n\n".join(parts)


def _table(rows: list[tuple[str, str, list[float], int]]) -> str:
    lines = [
        "| backend | query | p50 ms | p95 ms | p99 ms | rows per page |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for backend, name, times, found in rows:
        lines.append(
            f"| {backend} | {name} | {statistics.median(times):.1f} | "
            f"{_percentile(times, 95):.1f} | {_percentile(times, 99):.1f} | "
            f"{found / len(times):.1f} |"
        )
    return "\n".join(lines)


def _calls_in(database: Database) -> int:
    return database.read(lambda db: db.scalar(select(Call.id).order_by(Call.id.desc())) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="seed into (and keep) this directory")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the databases --keep/--postgres-url hold"
    )
    parser.add_argument("--postgres-settings", choices=("test", "tuned"), default="test")
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to use instead")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="callvault-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, list[float], int]] = []
    notes: list[str] = []
    plans: list[str] = []
    for backend in args.backends.split(","):
        cluster = None
        label = backend
        if backend == "sqlite":
            path = work / "calls.db"
            url = f"sqlite:///{path}"
            if not (args.reuse and path.exists()):
                path.unlink(missing_ok=True)
                seconds = seed_sqlite(path, args.calls)
                notes.append(f"- {backend}: seeded {args.calls:,} calls in {seconds:.0f} s")
        elif args.postgres_url:
            url = args.postgres_url
            if not args.reuse:
                seconds = seed_postgres(url, args.calls)
                notes.append(f"- {backend}: seeded {args.calls:,} calls in {seconds:.0f} s")
        else:
            tuned = args.postgres_settings == "tuned"
            settings = TUNED_SETTINGS if tuned else TEST_SETTINGS
            label += f" ({args.postgres_settings})"
            notes.append(
                f"- {label}: a cluster of the benchmark's own; "
                + ", ".join(f"{k}={v}" for k, v in settings.items())
            )
            cluster = Cluster(work / "pg", settings)
            if not args.reuse:
                cluster.remove()
            cluster.start()
            url = cluster.url
            if not cluster.seeded:
                seconds = seed_postgres(url, args.calls)
                cluster.mark_seeded()
                notes.append(f"- {label}: seeded {args.calls:,} calls in {seconds:.0f} s")
        database = Database(url)
        try:
            samples = samples_of(database)
            notes.append(f"- {label}: {_calls_in(database):,} calls in the database")
            for name, times, found in measure(database, samples, args.queries):
                results.append((label, name, times, found))
            plans.append(f"```\n-- {label} plans\n{explain(database, samples)}\n```")
        finally:
            database.dispose()
            if cluster is not None:
                cluster.stop()
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    table = _table(results)
    report = (
        f"# search_calls on {args.calls:,} calls ({args.queries} queries each)\n\n"
        f"{table}\n\n" + "\n".join(notes) + "\n\n" + "\n\n".join(plans) + "\n"
    )
    print(table)
    out = BENCH / "out" / f"calls-query-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(f"\n(saved with the query plans in {out})")


if __name__ == "__main__":
    main()
