"""The call list's speed on a big database: ``search_calls`` over 1,000,000 calls.

A benchmark, not a test: it prints a markdown table (and saves it with the query plans
in bench/out/).

Seed: ``--calls`` calls (default 1,000,000) written straight into a database migrated
by callvault (so the schema, the FTS5 trigram table and its triggers on SQLite, the
pg_trgm index on PostgreSQL are the real ones), by bulk statements, not the ORM:
``executemany`` in large transactions on SQLite, ``COPY`` on PostgreSQL (whose trigram
index is dropped for the load and built again afterwards, as one would for a bulk
import). Each call: one segment, two participants (an agent's extension and an outside
number, both named), two streams, two correlation keys (SIP Call-ID and SIPREC
session), one recording (95 % ready), over a year, lengths log-normal around 100 s;
0.5 % are tagged with a group. 2,000 agents (extensions 1000-2999) in 50 groups of 40,
one supervisor per group with the ``primary_group`` scope. Then ``ANALYZE``.

Measured: ``search_calls`` (the function the API and the pages call, rows built and
all) through ``Database.read``, first page of 50, for:

* the target of issue 4: a substring (varied: part of an outside number, a surname,
  part of a SIP Call-ID), ``min_duration=60``, as a group's supervisor;
* the same substring for an administrator (the whole year, no scope);
* the list without filters, for an administrator and for a supervisor.

``--queries`` runs each (default 200); p50/p95/p99 in ms. PostgreSQL is started the
way the tests start it (``tests/conftest.py``: initdb in a temp dir, fsync off) unless
``--postgres-url`` names one.

    .venv/bin/python bench/calls_query.py [--calls 1000000] [--backends sqlite,postgresql]
        [--queries 200] [--keep DIR] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from sqlalchemy import (  # noqa: E402
    bindparam,
    column,
    false,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
)
from sqlalchemy.orm import Session  # noqa: E402

from callvault.db import Database  # noqa: E402
from callvault.db.accounts import CallGroup, User  # noqa: E402
from callvault.db.models import Call  # noqa: E402
from callvault.web import calls_query, permissions  # noqa: E402
from callvault.web.calls_query import (  # noqa: E402
    CallFilter,
    filter_conditions,
    search_calls,
)
from callvault.web.principal import Principal, principal_of  # noqa: E402

AGENTS, GROUPS = 2_000, 50
CHUNK = 50_000
BASE = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_S = 365 * 86_400


def _words(text: str) -> list[str]:
    return text.split()


FIRST = "anna bartek celina dawid ewa filip grace henryk irena jan kasia leon marta nina olaf "
FIRST += "piotr quinn rosa stefan tamara ula victor wanda xavier yvonne zofia adam beata carl dora"
LAST = _words(
    "nowak kowalski wisniewski wojcik kowalczyk kaminski lewandowski zielinski szymanski "
    "wozniak dabrowski kozlowski jankowski mazur kwiatkowski krawczyk piotrowski grabowski "
    "nowakowski pawlowski michalski nowicki adamczyk dudek zajac wieczorek jablonski krol "
    "majewski olszewski jaworski wrobel malinowski pawlak witkowski walczak stepien gorski "
    "rutkowski michalak sikora ostrowski baran duda szewczyk tomaszewski pietrzak marciniak "
    "smith jones taylor brown williams wilson johnson davies robinson wright thompson evans "
    "walker white roberts green hall wood jackson clarke patel khan lewis james phillips"
)


# -- the data --------------------------------------------------------------------------


def _name(rng: random.Random) -> str:
    firsts = FIRST.split()
    return f"{rng.choice(firsts).title()} {rng.choice(LAST).title()}"


def _stamp(moment: datetime, sqlite: bool) -> Any:
    # SQLAlchemy's SQLite DateTime text, as UTCDateTime stores it (naive UTC).
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else moment


@dataclass
class Rows:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    keys: list[tuple[Any, ...]] = field(default_factory=list)
    segments: list[tuple[Any, ...]] = field(default_factory=list)
    participants: list[tuple[Any, ...]] = field(default_factory=list)
    streams: list[tuple[Any, ...]] = field(default_factory=list)
    links: list[tuple[Any, ...]] = field(default_factory=list)
    recordings: list[tuple[Any, ...]] = field(default_factory=list)
    tags: list[tuple[Any, ...]] = field(default_factory=list)


# Table -> the columns the seed writes (space-separated)
TABLES: dict[str, str] = {
    "call": "id uid started_at ended_at direction state created_at duration_s search_text",
    "call_key": "id call_id kind value created_at",
    "segment": "id call_id sip_call_id state started_at ended_at end_reason capture_path",
    "participant": "id segment_id participant_key aor name address updated_at",
    "stream": (
        "id segment_id label media_index codec srtp packets bytes lost reordered "
        "duplicates jitter_ms ssrc_changes garbage silent_stretches updated_at "
        "payload_types"
    ),
    "stream_participant": "stream_id participant_id role",
    "recording": (
        "id uid call_id segment_id kind format codec channels sample_rate duration_s "
        "size_bytes state channel_map attempts created_at options analysis file_name path"
    ),
    "call_group": "call_id group_id",
}
_ROWS_OF = {
    "call": "calls",
    "call_key": "keys",
    "segment": "segments",
    "participant": "participants",
    "stream": "streams",
    "stream_participant": "links",
    "recording": "recordings",
    "call_group": "tags",
}


@dataclass
class Samples:
    """Values of the seeded calls, to search for (so every search finds something)."""

    numbers: list[str] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)


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


def generate(total: int, sqlite: bool, seed: int = 7) -> Iterator[Rows]:
    """The rows of ``total`` calls, ``CHUNK`` calls at a time."""
    rng = random.Random(seed)
    agent_names = [_name(random.Random(n)) for n in range(AGENTS)]
    step = YEAR_S / total
    rows = Rows()
    for i in range(1, total + 1):
        started = BASE + timedelta(seconds=i * step + rng.random() * step)
        active = i > total - 100  # the newest hundred are in progress
        length = min(7200.0, round(rng.lognormvariate(4.6, 1.0), 3))
        ended = None if active else started + timedelta(seconds=length)
        agent = rng.randrange(AGENTS)
        extension = str(1000 + agent)
        outside = f"+{rng.choice('1234')}{rng.randrange(10**9, 10**10)}"
        outside_name = _name(rng) if rng.random() < 0.6 else None
        sip_call_id = f"{rng.getrandbits(64):016x}-{rng.getrandbits(32):08x}@10.{i % 250}.0.1"
        session = f"{rng.getrandbits(128):032x}"
        uid = f"{rng.getrandbits(128):032x}"
        inbound = rng.random() < 0.6
        people = [
            (f"sip:{outside}@carrier.example;user=phone", outside_name, outside),
            (f"sip:{extension}@pbx.example", agent_names[agent], extension),
        ]
        if not inbound:
            people.reverse()
        words = [uid, session, sip_call_id]
        for aor, name, address in people:
            words += [w for w in (aor, name, address) if w]
        text = " ".join(dict.fromkeys(w.lower() for w in words))
        at, end_at = _stamp(started, sqlite), _stamp(ended, sqlite) if ended else None
        rows.calls.append(
            (
                i, uid, at, end_at, None if active else ("inbound" if inbound else "outbound"),
                "active" if active else "ended", at, None if active else length, text,
            )
        )  # fmt: skip
        rows.keys += [
            (2 * i - 1, i, "sip-call-id", sip_call_id, at),
            (2 * i, i, "siprec_session", session, at),
        ]
        rows.segments.append(
            (i, i, sip_call_id, "active" if active else "captured", at, end_at,
             None if active else "bye", f"captures/{i}.pcap")
        )  # fmt: skip
        for n, (aor, name, address) in enumerate(people):
            pid = 2 * i - 1 + n
            rows.participants.append((pid, i, f"p{n}", aor, name, address, at))
            packets = int(length * 50)
            rows.streams.append(
                (pid, i, str(n + 1), n, "PCMU", False, packets, packets * 172,
                 rng.randrange(3), 0, 0, 1.5, 0, 0, "[]", at, "{}")
            )  # fmt: skip
            rows.links.append((pid, pid, "send"))
        if not active:
            state = "ready" if rng.random() < 0.95 else rng.choice(("failed", "waiting"))
            rows.recordings.append(
                (i, f"{rng.getrandbits(128):032x}", i, i, "segment", "ogg", "opus", 2, 8000,
                 length, int(length * 2000), state, "[]", 1, end_at, "{}", "{}",
                 f"{i}.ogg", f"recordings/{i}.ogg")
            )  # fmt: skip
        if rng.random() < 0.005:
            rows.tags.append((i, rng.randrange(GROUPS) + 1))
        if i % CHUNK == 0 or i == total:
            yield rows
            rows = Rows()


# -- seeding ------------------------------------------------------------------------------


def _people(database: Database) -> None:
    """Groups, agents and supervisors, through the ORM (a few thousand rows)."""
    from callvault.db.accounts import Group, UserGroup

    def add(db: Session) -> None:
        groups = [Group(id=g + 1, name=f"team-{g:02d}") for g in range(GROUPS)]
        db.add_all(groups)
        db.flush()
        for n in range(AGENTS):
            db.add(
                User(
                    id=n + 1, username=f"agent{n}", extension=str(1000 + n),
                    display_name=_name(random.Random(n)), primary_group_id=n % GROUPS + 1,
                )
            )  # fmt: skip
        for g in range(GROUPS):
            db.add(
                User(
                    id=AGENTS + g + 1, username=f"sup{g}", extension=str(5000 + g),
                    role="supervisor", scope="primary_group", primary_group_id=g + 1,
                )
            )  # fmt: skip
        db.add(User(id=AGENTS + GROUPS + 1, username="root", role="admin", scope="all"))
        db.flush()
        db.add(UserGroup(user_id=AGENTS + GROUPS + 1, group_id=1))

    database.write(add)


def seed_sqlite(path: Path, total: int) -> float:
    database = Database(f"sqlite:///{path}")
    database.migrate()
    _people(database)
    database.dispose()
    began = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    # The FTS5 table is filled in one pass afterwards ('rebuild'), far faster than row by
    # row through its triggers; the triggers are put back exactly as the migration made them.
    triggers = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'call'"
    ).fetchall()
    for name, _sql in triggers:
        connection.execute(f'DROP TRIGGER "{name}"')
    for rows in generate(total, sqlite=True):
        connection.execute("BEGIN")
        for name, names_text in TABLES.items():
            columns = names_text.split()
            values = getattr(rows, _ROWS_OF[name])
            marks = ",".join("?" * len(columns))
            names = ",".join(f'"{c}"' for c in columns)
            connection.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({marks})', values)
        connection.execute("COMMIT")
        print(f"  sqlite: {rows.calls[-1][0]:,} calls", file=sys.stderr, flush=True)
    connection.execute("INSERT INTO call_fts(call_fts) VALUES ('rebuild')")
    for _name, sql in triggers:
        connection.execute(sql)
    connection.execute("ANALYZE")
    connection.close()
    return time.perf_counter() - began


def seed_postgres(url: str, total: int) -> float:
    import psycopg
    from sqlalchemy.engine import make_url

    database = Database(url)
    database.migrate()
    _people(database)
    database.dispose()
    began = time.perf_counter()
    parts = make_url(url)
    options = dict(parts.query).get("options")
    with psycopg.connect(
        host=parts.host, port=parts.port, user=parts.username, dbname=parts.database,
        options=options if isinstance(options, str) else "",
    ) as connection:  # fmt: skip
        index = connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_call_search_trgm'"
        ).fetchone()
        assert index is not None, "the pg_trgm index of migration 0003 is missing"
        connection.execute("DROP INDEX ix_call_search_trgm")
        for rows in generate(total, sqlite=False):
            with connection.cursor() as cursor:
                for table, names_text in TABLES.items():
                    columns = names_text.split()
                    names = ",".join(f'"{c}"' for c in columns)
                    with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                        for row in getattr(rows, _ROWS_OF[table]):
                            copy.write_row(row)
            connection.commit()
            print(f"  postgresql: {rows.calls[-1][0]:,} calls", file=sys.stderr, flush=True)
        connection.execute("SET maintenance_work_mem = '1GB'")
        connection.execute(index[0])
        for table in ("call", "call_key", "segment", "participant", "stream", "recording"):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'),"
                f' (SELECT max(id) FROM "{table}"))'
            )
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


# -- measuring ----------------------------------------------------------------------------------


def _principal(database: Database, login: str) -> Principal:
    def load(db: Session) -> Principal:
        user = db.scalars(select(User).where(User.username == login)).one()
        return principal_of(db, user, "session")

    return database.read(load)


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


def _timings(run: Callable[[int], Any], count: int) -> tuple[list[float], int]:
    run(0)  # warm the caches once
    times: list[float] = []
    rows = 0
    for n in range(count):
        began = time.perf_counter()
        page = run(n)
        times.append((time.perf_counter() - began) * 1000)
        rows += len(page.items)
    return times, rows


def _percentile(times: list[float], p: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(database: Database, samples: Samples, count: int) -> list[tuple[str, list[float], int]]:
    supervisor, admin = _principal(database, "sup7"), _principal(database, "root")
    words = needles(samples, count)

    def page(who: Principal, query: str) -> Any:
        flt = CallFilter.parse(query)
        return database.read(lambda db: search_calls(db, who, flt, limit=50))

    cases: list[tuple[str, Callable[[int], Any]]] = [
        (
            "substring + min_duration=60, a group's supervisor",
            lambda n: page(supervisor, f"q={words[n]}&min_duration=60"),
        ),
        ("substring, administrator (whole database)", lambda n: page(admin, f"q={words[n]}")),
        ("no filter, administrator", lambda n: page(admin, "")),
        ("no filter, a group's supervisor", lambda n: page(supervisor, "")),
    ]
    results = []
    for name, run in cases:
        times, rows = _timings(run, count)
        results.append((name, times, rows))
        print(f"  {name}: p95 {_percentile(times, 95):.1f} ms", file=sys.stderr, flush=True)
    return results


def explain(database: Database, samples: Samples) -> str:
    """The plan of the target query's main statement, with one of the needles."""
    supervisor = _principal(database, "sup7")
    word = needles(samples, 1)[0]
    flt = CallFilter.parse(f"q={word}&min_duration=60")

    def plan(db: Session) -> str:
        statement = (
            select(Call.id)
            .where(*filter_conditions(db, supervisor, flt))
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(51)
        )
        dialect = db.get_bind().dialect
        sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN ANALYZE "
        lines = [
            " | ".join(str(c) for c in row) for row in db.connection().exec_driver_sql(prefix + sql)
        ]
        return f"-- q={word}\n{sql}\n\n" + "\n".join(lines)

    return database.read(plan)


# -- what if (the schema and search changes proposed to reach the targets) ----------------

# Not callvault's code: what the lead is asked to adopt, applied to the bench database
# and swapped into ``calls_query`` for a second measurement.
#
# 1. ``participant.call_id`` (the segment's call, copied when the participant is written)
#    with an index on (address, call_id): "calls where one of these addresses took part"
#    becomes one index range per address instead of a participant row and a segment row
#    per match (the cost of every group scope).
# 2. SQLite: the FTS5 trigram table searched with a phrase (``MATCH '"5550123"'``), which
#    the index answers alone, instead of ``LIKE ... ESCAPE``: FTS5 cannot use its index for
#    a LIKE with an ESCAPE clause at all (a scan of every row), and even a plain LIKE must
#    re-read each candidate's text from the call table.


def apply_what_if(database: Database) -> None:
    def change(db: Session) -> None:
        connection = db.connection()
        if database.backend == "sqlite":
            columns = [r[1] for r in connection.exec_driver_sql("PRAGMA table_info(participant)")]
            if "call_id" not in columns:
                connection.exec_driver_sql("ALTER TABLE participant ADD COLUMN call_id INTEGER")
                connection.exec_driver_sql(
                    "UPDATE participant SET call_id ="
                    " (SELECT call_id FROM segment WHERE segment.id = participant.segment_id)"
                )
        else:
            connection.exec_driver_sql(
                "ALTER TABLE participant ADD COLUMN IF NOT EXISTS call_id int"
            )
            connection.exec_driver_sql(
                "UPDATE participant p SET call_id = s.call_id FROM segment s"
                " WHERE s.id = p.segment_id AND p.call_id IS NULL"
            )
        connection.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_participant_address_call_id"
            " ON participant (address, call_id)"
        )
        connection.exec_driver_sql("ANALYZE participant")

    database.write(change)


_PARTICIPANT = table("participant", column("call_id"), column("address"))


def _visible_calls_what_if(db: Session, who: Principal) -> Any:
    if who.is_admin or who.scope == "all":
        return true()
    groups = permissions.scope_groups(who)
    addresses = who.addresses | permissions.group_addresses(db, groups)
    conditions = []
    if addresses:
        took_part = select(_PARTICIPANT.c.call_id).where(
            _PARTICIPANT.c.address.in_(sorted(addresses))
        )
        conditions.append(Call.id.in_(took_part))
    if groups:
        tagged = select(CallGroup.call_id).where(CallGroup.group_id.in_(groups))
        conditions.append(Call.id.in_(tagged))
    return or_(*conditions) if conditions else false()


def _search_what_if(db: Session, needle: str) -> Any:
    needle = needle.strip().lower()
    if db.get_bind().dialect.name != "sqlite" or len(needle) < 3:
        return _ORIGINAL["search_condition"](db, needle)
    phrase = '"' + needle.replace('"', '""') + '"'
    match = text("call_fts MATCH :phrase").bindparams(bindparam("phrase", phrase, unique=True))
    return Call.id.in_(select(literal_column("rowid")).select_from(text("call_fts")).where(match))


_ORIGINAL = {
    "search_condition": calls_query.search_condition,
    "visible_calls": calls_query.visible_calls,
}


def use_what_if(on: bool) -> None:
    calls_query.search_condition = _search_what_if if on else _ORIGINAL["search_condition"]  # type: ignore[assignment]
    calls_query.visible_calls = _visible_calls_what_if if on else _ORIGINAL["visible_calls"]  # type: ignore[assignment]


# -- main ------------------------------------------------------------------------------------------


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="seed into (and keep) this directory")
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to use")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the databases --keep/--postgres-url hold"
    )
    parser.add_argument(
        "--what-if", action="store_true", help="measure again with the proposed changes applied"
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="callvault-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, list[float], int]] = []
    notes: list[str] = []
    for backend in args.backends.split(","):
        cluster = None
        if backend == "sqlite":
            path = work / "calls.db"
            url = f"sqlite:///{path}"
            if not (args.reuse and path.exists()):
                path.unlink(missing_ok=True)
                seconds = seed_sqlite(path, args.calls)
                notes.append(f"- {backend}: seeded {args.calls:,} calls in {seconds:.0f} s")
        else:
            url = args.postgres_url
            if url is None:
                from tests.conftest import _Cluster

                cluster = _Cluster()
                cluster.start()
                url = cluster.url
            if not (args.reuse and args.postgres_url):
                seconds = seed_postgres(url, args.calls)
                notes.append(f"- {backend}: seeded {args.calls:,} calls in {seconds:.0f} s")
        database = Database(url)
        try:
            samples = samples_of(database)
            variants = [("", False)] + ([(" (what if)", True)] if args.what_if else [])
            for label, on in variants:
                if on:
                    apply_what_if(database)
                use_what_if(on)
                for name, times, found in measure(database, samples, args.queries):
                    results.append((backend + label, name, times, found))
                plan = explain(database, samples)
                notes.append(f"\n```\n-- {backend}{label} plan\n{plan}\n```")
            use_what_if(False)
        finally:
            database.dispose()
            if cluster is not None:
                cluster.stop()
    table = _table(results)
    report = (
        f"# search_calls on {args.calls:,} calls ({args.queries} queries each)\n\n"
        f"{table}\n\n" + "\n".join(notes) + "\n"
    )
    print(table)
    out = BENCH / "out" / f"calls-query-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(f"\n(saved with the query plans in {out})")


if __name__ == "__main__":
    main()
