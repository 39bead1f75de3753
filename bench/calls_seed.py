"""A big call database for ``calls_query.py``: the generator, the bulk seeding, the cluster.

Seed: ``total`` calls written straight into a database migrated by callvault (so the
schema, the FTS5 trigram table and its triggers on SQLite, the pg_trgm index on
PostgreSQL are the real ones), by bulk statements, not the ORM: ``executemany`` in large
transactions on SQLite, ``COPY`` on PostgreSQL (whose trigram index is dropped for the
load and built again afterwards, as one would for a bulk import). Each call: one
segment, two participants (an agent's extension and an outside number, both named;
``participant.call_id`` set as the recorder sets it, from the segment), two streams, two
correlation keys (SIP Call-ID and SIPREC session), one recording (95 % ready), over a
year, lengths log-normal around 100 s; 0.5 % are tagged with a group. 2,000 agents
(extensions 1000-2999) in 50 groups of 40, one supervisor per group with the
``primary_group`` scope, one administrator. Then ``ANALYZE``.

:class:`Cluster` is a PostgreSQL of the benchmark's own in a directory (kept between
runs when asked), started with the test suite's settings or production-like ones.
"""

from __future__ import annotations

import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from callvault.db import Database
from callvault.db.accounts import Group, User, UserGroup

AGENTS, GROUPS = 2_000, 50
CHUNK = 50_000
BASE = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_S = 365 * 86_400

FIRST = [
    "anna",
    "bartek",
    "celina",
    "dawid",
    "ewa",
    "filip",
    "grace",
    "henryk",
    "irena",
    "jan",
    "kasia",
    "leon",
    "marta",
    "nina",
    "olaf",
    "piotr",
    "quinn",
    "rosa",
    "stefan",
    "tamara",
    "ula",
    "victor",
    "wanda",
    "xavier",
    "yvonne",
    "zofia",
    "adam",
    "beata",
    "carl",
    "dora",
]
LAST = [
    "nowak",
    "kowalski",
    "wisniewski",
    "wojcik",
    "kowalczyk",
    "kaminski",
    "lewandowski",
    "zielinski",
    "szymanski",
    "wozniak",
    "dabrowski",
    "kozlowski",
    "jankowski",
    "mazur",
    "kwiatkowski",
    "krawczyk",
    "piotrowski",
    "grabowski",
    "nowakowski",
    "pawlowski",
    "michalski",
    "nowicki",
    "adamczyk",
    "dudek",
    "zajac",
    "wieczorek",
    "jablonski",
    "krol",
    "majewski",
    "olszewski",
    "jaworski",
    "wrobel",
    "malinowski",
    "pawlak",
    "witkowski",
    "walczak",
    "stepien",
    "gorski",
    "rutkowski",
    "michalak",
    "sikora",
    "ostrowski",
    "baran",
    "duda",
    "szewczyk",
    "tomaszewski",
    "pietrzak",
    "marciniak",
    "smith",
    "jones",
    "taylor",
    "brown",
    "williams",
    "wilson",
    "johnson",
    "davies",
    "robinson",
    "wright",
    "thompson",
    "evans",
    "walker",
    "white",
    "roberts",
    "green",
    "hall",
    "wood",
    "jackson",
    "clarke",
    "patel",
    "khan",
    "lewis",
    "james",
    "phillips",
]

# Table -> the columns the seed writes, in the order of the generated tuples.
TABLES: dict[str, tuple[str, str]] = {
    "call": (
        "calls",
        "id uid started_at ended_at direction state created_at duration_s search_text",
    ),
    "call_key": ("keys", "id call_id kind value created_at"),
    "segment": (
        "segments",
        "id call_id sip_call_id state started_at ended_at end_reason capture_path",
    ),
    "participant": (
        "participants",
        "id segment_id call_id participant_key aor name address updated_at",
    ),
    "stream": (
        "streams",
        "id segment_id label media_index codec srtp packets bytes lost reordered "
        "duplicates jitter_ms ssrc_changes garbage silent_stretches updated_at payload_types",
    ),
    "stream_participant": ("links", "stream_id participant_id role"),
    "recording": (
        "recordings",
        "id uid call_id segment_id kind format codec channels sample_rate duration_s "
        "size_bytes state channel_map attempts created_at options analysis file_name path",
    ),
    "call_group": ("tags", "call_id group_id"),
}


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


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"


def _stamp(moment: datetime, sqlite: bool) -> Any:
    # SQLAlchemy's SQLite DateTime text, as UTCDateTime stores it (naive UTC).
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else moment


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
            rows.participants.append((pid, i, i, f"p{n}", aor, name, address.lower(), at))
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


def _people(database: Database) -> None:
    """Groups, agents and supervisors, through the ORM (a few thousand rows)."""

    def add(db: Session) -> None:
        db.add_all(Group(id=g + 1, name=f"team-{g:02d}") for g in range(GROUPS))
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


def _progress(backend: str, rows: Rows) -> None:
    print(f"  {backend}: {rows.calls[-1][0]:,} calls", file=sys.stderr, flush=True)


def seed_sqlite(path: Path, total: int) -> float:
    """Seed a new SQLite file; the seconds the bulk load took."""
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
        for table, (attribute, names_text) in TABLES.items():
            columns = names_text.split()
            names = ",".join(f'"{c}"' for c in columns)
            marks = ",".join("?" * len(columns))
            statement = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
            connection.executemany(statement, getattr(rows, attribute))
        connection.execute("COMMIT")
        _progress("sqlite", rows)
    connection.execute("INSERT INTO call_fts(call_fts) VALUES ('rebuild')")
    for _name, sql in triggers:
        connection.execute(sql)
    connection.execute("ANALYZE")
    connection.close()
    return time.perf_counter() - began


def seed_postgres(url: str, total: int) -> float:
    """Seed an empty PostgreSQL database; the seconds the bulk load took."""
    import psycopg
    from sqlalchemy.engine import make_url

    database = Database(url)
    database.migrate()
    _people(database)
    database.dispose()
    began = time.perf_counter()
    parts = make_url(url)
    with psycopg.connect(
        host=parts.host, port=parts.port, user=parts.username, dbname=parts.database
    ) as connection:
        index = connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_call_search_trgm'"
        ).fetchone()
        assert index is not None, "the pg_trgm index of migration 0003 is missing"
        connection.execute("DROP INDEX ix_call_search_trgm")
        for rows in generate(total, sqlite=False):
            with connection.cursor() as cursor:
                for table, (attribute, names_text) in TABLES.items():
                    names = ",".join(f'"{c}"' for c in names_text.split())
                    with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                        for row in getattr(rows, attribute):
                            copy.write_row(row)
            connection.commit()
            _progress("postgresql", rows)
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


# -- a PostgreSQL of the benchmark's own -------------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The test suite's cluster (tests/conftest.py): defaults (shared_buffers=128MB), no fsync.
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# What one would set on a 24 GB machine with an SSD given to the recorder's database.
TUNED_SETTINGS = TEST_SETTINGS | {
    "shared_buffers": "6GB",
    "effective_cache_size": "16GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
}


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    import os

    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """A PostgreSQL cluster in ``root`` (made on first start, kept until :meth:`remove`)."""

    def __init__(self, root: Path, settings: dict[str, str]) -> None:
        self.root, self.settings = root, settings
        self.data = root / "data"
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/callvault_bench"

    @property
    def seeded(self) -> bool:
        return (self.root / "seeded").exists()

    def start(self) -> None:
        import psycopg

        fresh = not self.data.exists()
        if fresh:
            self.root.mkdir(parents=True, exist_ok=True)
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres", "postgres")
            initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres"]
            initdb += ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]
            subprocess.run(_as_postgres(initdb), check=True, capture_output=True)
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
        options += " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log")]
        command += ["-w", "-t", "60", "-o", options, "start"]
        subprocess.run(_as_postgres(command), check=True, capture_output=True)
        if fresh:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user="postgres", autocommit=True
            ) as connection:
                connection.execute("CREATE DATABASE callvault_bench")

    def mark_seeded(self) -> None:
        (self.root / "seeded").touch()

    def stop(self) -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_postgres(command), check=False, capture_output=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
