"""A dedicated PostgreSQL database holding a council's worth of record: 1,000,000 documents
for 100,000 children, with page text, generated in the server (generate_series), no OCR.

The schema is escr's own (its Alembic migrations). Metadata rows are written by INSERT ... SELECT over
generate_series, page text by COPY (made of word runs drawn with a long-tailed frequency), in
chunks; the secondary indexes of the seeded tables are dropped first and
rebuilt afterwards from their own definitions (faster than maintaining them row by row, and
whatever indexes the migrations define are the ones measured). A `bench_seed` row remembers
what was seeded: a later run with the same parameters reuses the database as it is.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Connection, Engine

from bench.corpus import _FAMILY, _GIVEN, TITLES, WORDS

SEED_VERSION = 3  # 3: pages.tsv, the stored tsvector of migration 0005
TEAMS = 20  # children are spread over this many teams; a caseworker belongs to one
CHUNK_DOCS = 50_000
TABLES = ("children", "batches", "documents", "document_children", "pages")


@dataclass(frozen=True)
class SeedPlan:
    docs: int
    children: int
    pages_per_doc: int = 1
    words_per_page: int = 250

    @property
    def key(self) -> dict[str, int]:
        return {"version": SEED_VERSION, "docs": self.docs, "children": self.children,
                "pages_per_doc": self.pages_per_doc, "words_per_page": self.words_per_page}

    @property
    def batches(self) -> int:
        return (self.docs + 9) // 10


def vocabulary() -> list[str]:
    """Real record words (most common first), then a long tail of rarer made-up terms."""
    rng = random.Random(4)
    syllables = ["bar", "tel", "mon", "ris", "ca", "do", "len", "vor", "sha", "pi", "gre", "lum", "ost", "ka",
                 "fen", "wil", "dra", "nu", "sel", "tor"]
    tail = sorted({"".join(rng.choice(syllables) for _ in range(3)) for _ in range(6000)})
    rng.shuffle(tail)
    return list(dict.fromkeys(WORDS)) + tail


def child_id(n: int) -> str:
    return f"BS{n:06d}"


def team_of(n: int) -> str:
    return f"team-{n % TEAMS:02d}"


def _child_id_sql(expr: str) -> str:
    return f"'BS' || lpad(({expr})::text, 6, '0')"


def _child_of_doc(d: str, children: int) -> str:
    """Child number (1-based) of document d: a bijection per `children` documents (7919 is prime)."""
    return f"(1 + (({d})::bigint * 7919) % {children})"


def _arr(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _column_values(plan: SeedPlan) -> dict[str, dict[str, str]]:
    """SQL for each column of each seeded table, over generate_series alias g(n) (and s(seq) for pages)."""
    ts = "(timestamptz '2020-01-01 09:00+00' + g.n * interval '3 minutes')"
    doc_id = "'D-' || lpad(to_hex(g.n), 16, '0')"
    c = _child_of_doc("g.n", plan.children)
    hex64 = "md5(g.n::text) || md5((g.n + 7)::text)"
    return {
        "children": {
            "child_id": _child_id_sql("g.n"), "given_names": f"({_arr(_GIVEN)})[1 + g.n % {len(_GIVEN)}]",
            "family_name": f"({_arr(_FAMILY)})[1 + (g.n / {len(_GIVEN)}) % {len(_FAMILY)}]",
            "date_of_birth": "date '2006-01-01' + (g.n * 37) % 6500", "nhs_number": "NULL",
            "category": "(ARRAY['cin','cp','cla'])[1 + g.n % 3]", "status": "'open'",
            "team": f"'team-' || lpad((g.n % {TEAMS})::text, 2, '0')", "updated_at": "now()",
        },
        "batches": {
            "id": "'S-bench' || lpad(g.n::text, 9, '0')", "sha256": hex64, "claim_id": "'bench-' || g.n",
            "operator": "'bench'", "device": "'bench-mfd'", "source_name": "'bench/batch-' || g.n || '.pdf'",
            "media_type": "'application/pdf'", "size_bytes": "2000000", "page_count": str(10 * plan.pages_per_doc),
            "producer": "NULL", "cover_batch_ids": "'[]'", "original_key": "'originals/bench/' || g.n || '.pdf'",
            "received_at": ts, "filed_at": ts,
        },
        "documents": {
            "id": doc_id, "batch_id": "'S-bench' || lpad(((g.n - 1) / 10 + 1)::text, 9, '0')",
            "seq": "(g.n - 1) % 10 + 1", "coversheet_batch_id": "NULL", "cover_page": "NULL",
            "first_page": f"((g.n - 1) % 10) * {plan.pages_per_doc}",
            "last_page": f"((g.n - 1) % 10) * {plan.pages_per_doc} + {plan.pages_per_doc - 1}",
            "page_count": str(plan.pages_per_doc), "declared_pages": "NULL",
            "doc_type": f"({_arr(list(TITLES))})[1 + g.n % {len(TITLES)}]",
            "doc_date": "date '2008-01-01' + ((g.n::bigint * 7919) % 6000)::int",  # bigint: n * 7919 passes 2^31
            "third_party": "(g.n % 17 = 0)",
            "state": "CASE WHEN g.n % 50 = 0 THEN 'awaiting_verification' ELSE 'verified' END",
            "state_reasons": "'[]'", "searchable_key": "'searchable/bench/' || g.n || '.pdf'",
            "searchable_sha256": hex64, "manifest_key": "'manifests/bench/' || g.n || '.json'",
            "manifest_sha256": hex64, "retention_until": "date '2090-01-01'", "indexed_by": "NULL",
            "verified_by": "CASE WHEN g.n % 50 = 0 THEN NULL ELSE 'bench-verifier' END",
            "verified_at": f"CASE WHEN g.n % 50 = 0 THEN NULL ELSE {ts} END", "created_at": ts, "updated_at": ts,
        },
        "document_children": {
            "document_id": doc_id, "child_id": _child_id_sql(c), "basis": "'coversheet'", "linked_by": "'escr'",
            "linked_at": ts,
        },
    }


def text_fragments(count: int = 40_000, words: int = 25) -> list[str]:
    """Runs of words drawn with a long-tailed (Zipf-like) frequency; pages are made of these."""
    vocab = np.array(vocabulary(), dtype=object)
    rng = np.random.default_rng(3)
    picks = np.floor(len(vocab) * rng.random((count, words)) ** 3).astype(np.int64)
    return [" ".join(row) for row in vocab[picks]]


def _copy_pages(conn: Connection, plan: SeedPlan, lo: int, hi: int, fragments: list[str],
                rng: np.random.Generator) -> None:
    """COPY the page rows of documents lo..hi: the child's names, then FRAGMENTS_PER_PAGE runs of words."""
    known = {"document_id", "seq", "source_index", "text", "words", "mean_conf", "word_count", "rotation",
             "skew_deg", "dpi_x", "dpi_y", "blank", "metrics"}
    columns = _columns(conn, "pages")
    missing = [n for n, nullable, has_default, _ in columns if n not in known and not nullable and not has_default]
    if missing:
        raise RuntimeError(f"the seed does not know how to fill pages.{missing[0]} (new NOT NULL column?)")
    names = [n for n, *_ in columns if n in known]
    per_page = max(1, plan.words_per_page // 25)
    picks = rng.integers(0, len(fragments), size=((hi - lo + 1) * plan.pages_per_doc, per_page))
    cursor = conn.connection.driver_connection.cursor()
    row = 0
    with cursor.copy(f"COPY pages ({', '.join(names)}) FROM STDIN") as copy:
        for d in range(lo, hi + 1):
            c = 1 + (d * 7919) % plan.children
            who = f"{_GIVEN[c % len(_GIVEN)]} {_FAMILY[(c // len(_GIVEN)) % len(_FAMILY)]}"
            for seq in range(1, plan.pages_per_doc + 1):
                body = " ".join(fragments[i] for i in picks[row])
                row += 1
                values = {"document_id": f"D-{d:016x}", "seq": seq, "source_index": ((d - 1) % 10) * plan.pages_per_doc + seq - 1,
                          "text": f"{who} {body}", "words": "[]", "mean_conf": 91.5, "word_count": per_page * 25 + 2,
                          "rotation": 0, "skew_deg": None, "dpi_x": 300.0, "dpi_y": 300.0, "blank": False,
                          "metrics": "{}"}
                copy.write_row([values[n] for n in names])


def _columns(conn: Connection, table: str) -> list[tuple[str, bool, bool, str]]:
    """(name, nullable, has_default, type) of each column of `table`."""
    rows = conn.execute(text(
        "SELECT column_name, is_nullable = 'YES', column_default IS NOT NULL OR is_identity = 'YES', data_type "
        "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = :t "
        "ORDER BY ordinal_position"), {"t": table}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _insert_sql(conn: Connection, table: str, values: dict[str, str], source: str) -> str:
    """INSERT ... SELECT for the table's actual columns; a required column we cannot fill is an error."""
    cols, exprs = [], []
    for name, nullable, has_default, data_type in _columns(conn, table):
        if name in values:
            expr = values[name]
            cols.append(name)
            exprs.append(f"CAST({expr} AS {data_type})" if data_type in ("json", "jsonb") else expr)
        elif not nullable and not has_default:
            raise RuntimeError(f"the seed does not know how to fill {table}.{name} (new NOT NULL column?)")
    return f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} {source}"


def admin_engine(url: str) -> Engine:
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _recreate_database(url: str) -> None:
    name = make_url(url).database
    engine = admin_engine(url)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def _database_exists(url: str) -> bool:
    engine = admin_engine(url)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                             {"n": make_url(url).database}).first()
    engine.dispose()
    return found is not None


def _seeded_key(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('bench_seed')")).scalar() is None:
            return None
        raw = conn.execute(text("SELECT key FROM bench_seed")).scalar()
    return json.loads(raw) if raw else None


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """(name, definition) of indexes on the seeded tables that back no constraint."""
    rows = conn.execute(text(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
        "AND i.tablename = ANY(:tables) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"),
        {"tables": list(TABLES)}).all()
    return [(r[0], r[1]) for r in rows]


def seed(url: str, plan: SeedPlan, *, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Make sure `url` holds `plan`'s rows on escr's current schema; returns what was done."""
    from escr.record.database import Database

    reused = _database_exists(url)
    if reused:
        try:
            Database(url).create_schema()  # a newer migration is applied to the seeded rows
        except Exception as exc:  # noqa: BLE001 - any failure: start again from an empty database
            progress(f"existing {make_url(url).database} could not be migrated ({type(exc).__name__}); re-seeding")
            reused = False
    engine = create_engine(url)
    if reused and _seeded_key(engine) == plan.key:
        engine.dispose()
        return {"seeded": False, "reused": True, "key": plan.key}
    engine.dispose()
    _recreate_database(url)
    Database(url).create_schema()
    engine = create_engine(url)
    started = time.perf_counter()
    values = _column_values(plan)
    fragments, rng = text_fragments(), np.random.default_rng(5)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        indexes = _secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        conn.execute(text(_insert_sql(conn, "children", values["children"],
                                      f"FROM generate_series(1, {plan.children}) AS g(n)")))
        conn.execute(text(_insert_sql(conn, "batches", values["batches"],
                                      f"FROM generate_series(1, {plan.batches}) AS g(n)")))
    for lo in range(1, plan.docs + 1, CHUNK_DOCS):
        hi = min(plan.docs, lo + CHUNK_DOCS - 1)
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            rows = f"FROM generate_series({lo}, {hi}) AS g(n)"
            conn.execute(text(_insert_sql(conn, "documents", values["documents"], rows)))
            conn.execute(text(_insert_sql(conn, "document_children", values["document_children"], rows)))
            _copy_pages(conn, plan, lo, hi, fragments, rng)
        progress(f"seeded documents {hi:,} of {plan.docs:,} ({time.perf_counter() - started:.0f} s)")
    rows_s = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        for name, definition in indexes:
            progress(f"building index {name}")
            conn.execute(text(definition))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text("CREATE TABLE bench_seed (key text NOT NULL, seconds double precision NOT NULL)"))
        conn.execute(text("INSERT INTO bench_seed VALUES (:k, :s)"),
                     {"k": json.dumps(plan.key), "s": time.perf_counter() - started})
    engine.dispose()
    return {"seeded": True, "reused": False, "key": plan.key, "rows_s": round(rows_s, 1),
            "total_s": round(time.perf_counter() - started, 1), "indexes_rebuilt": [n for n, _ in indexes]}
