"""Soak: the watcher, two Celery workers and the web app under a sustained mixed load while a
worker, the watcher and the database connections are killed at random; nothing is lost or filed twice.

Short by default (about 30 s of load: a dozen files); `ESCR_SOAK_SECONDS=600` (or `make soak`)
runs it longer. `ESCR_SOAK_SEED` picks another reproducible schedule, `ESCR_SOAK_REPORT` where
the figures go as JSON (default: the test's temporary folder). Loopback only: Redis on
127.0.0.1 (`ESCR_TEST_SOAK_REDIS_URL`, database 13 by default), the web app on a free port.
On SQLite the database-connection fault is skipped (there is no server to cut) and the JSON says so.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from escr import clock
from escr.intake.quarantine import list_quarantine
from escr.record.models import Batch, Document, Event, Page
from tests.support.cli import cli_env
from tests.support.intake import free_port
from tests.support.soak import FORGED, HOSTILE_CODES, Proc, WebLoad, drop, escr_env, plan_load, wait_for

pytestmark = [pytest.mark.soak, pytest.mark.ocr,
              # Celery's Redis backend calls a setex that redis-py 8 marks deprecated: not ours to fix.
              pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")]

REDIS_URL = os.environ.get("ESCR_TEST_SOAK_REDIS_URL", "redis://127.0.0.1:6379/13")
SECONDS = float(os.environ.get("ESCR_SOAK_SECONDS", "30"))
SEED = int(os.environ.get("ESCR_SOAK_SEED", "20261204"))
DB_WINDOW_S = 15.0  # after the database connections are cut, answers may fail for this long
USERS = {"cw.north": ("caseworker", ("north",)), "cw.south": ("caseworker", ("south",)),
         "tm.north": ("team_manager", ("north",)), "bs.jones": ("business_support", ())}


@pytest.fixture
def broker_env():
    """A queue of this run's own on the loopback Redis; skipped without Redis, except in CI."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable in CI; .ci/run must start it")
        pytest.skip("Redis is not running on this machine")
    queue = f"escr-soak-{uuid.uuid4().hex[:12]}"
    # A short visibility timeout: a killed worker's page goes to the other within seconds.
    yield {"ESCR_CELERY__BROKER_URL": REDIS_URL, "ESCR_CELERY__RESULT_BACKEND": REDIS_URL,
           "ESCR_CELERY__QUEUE": queue, "ESCR_CELERY__VISIBILITY_TIMEOUT_S": "10",
           "ESCR_CELERY__WAIT_TIMEOUT_S": "120"}
    db = redis.Redis.from_url(REDIS_URL)
    for key in db.scan_iter(match=f"*{queue}*"):
        db.delete(key)


def _commit() -> str:
    """The escr commit the figures are of ("-dirty" with changes not committed), as the benchmark names it."""
    repo = Path(__file__).resolve().parents[1]
    git = ["git", "-C", str(repo)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           check=False)
    return (head.stdout.strip() or "unknown") + ("-dirty" if dirty.stdout.strip() else "")


def cut_database_connections(url: str) -> int:
    """`pg_terminate_backend` on every connection to the app's database but this one."""
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        engine.dispose()


def test_soak_nothing_lost_or_filed_twice_under_load_and_faults(with_children, broker_env, tmp_path):
    services, settings = with_children, with_children.settings
    database_url = settings.database_url
    rng = random.Random(SEED)
    load_at_start = os.getloadavg()  # the figures say how busy the machine was
    began = time.monotonic()
    arrivals = plan_load(rng, SECONDS, tmp_path)
    tokens = {user: cli_env(services, user, role, teams=teams)["ESCR_TOKEN"] for user, (role, teams) in USERS.items()}
    folder = settings.intake_dir / "bs.jones" / "mfd-soak"
    elsewhere = tmp_path / "elsewhere"  # files on the server outside the intake folder

    # Faults at seeded random moments of the load phase: at least one of each, one a minute when longer.
    rounds = max(1, round(SECONDS / 60))
    faults = sorted([(rng.uniform(0.1, 0.9) * SECONDS, kind) for kind in ("worker", "watcher", "database")
                     for _ in range(rounds)])

    env = escr_env(settings.home, database_url, broker_env)
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    workers = [Proc(f"worker-{n}", ["worker", "--concurrency", "1", "--hostname", f"soak{n}-{uuid.uuid4().hex[:6]}@test"],
                    env, logs) for n in (1, 2)]
    watcher = Proc("watcher", ["watch"], env, logs)
    web = Proc("web", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, logs)
    everyone = [*workers, watcher, web]
    injected: list[dict[str, object]] = []
    windows: list[tuple[float, float]] = []
    load = WebLoad(f"http://127.0.0.1:{port}", tokens, rng)
    try:
        for proc in everyone:
            proc.start()
        for worker in workers:
            wait_for(lambda w=worker: " ready." in w.log() or not w.alive(), 120, f"{worker.name} to start")
            assert worker.alive(), worker.log()[-3000:]
        wait_for(lambda: load.get("bs.jones", "/api/v1/me")[0] == 200 or not web.alive(), 120, "the web app to answer")
        assert web.alive(), web.log()[-3000:]
        load.answers.clear()
        load.start()

        # --- the load phase: files arrive on schedule, faults strike on theirs ----------------------
        start = time.monotonic()
        pending = sorted([(a.at, "file", a) for a in arrivals] + [(at, kind, None) for at, kind in faults],
                         key=lambda item: item[0])
        for at, kind, arrival in pending:
            time.sleep(max(0.0, start + at - time.monotonic()))
            if arrival is not None:
                drop(arrival, folder, elsewhere)
                continue
            in_flight = sum(1 for p in settings.processing_dir.rglob("*") if p.is_file())
            if kind == "worker":
                victim = rng.choice(workers)
                victim.kill()
                injected.append({"fault": "worker SIGKILL", "at_s": round(at, 1), "target": victim.name,
                                 "files_in_processing": in_flight})
                time.sleep(rng.uniform(1.0, 5.0))
                victim.start()  # the machine came back
            elif kind == "watcher":
                watcher.kill()
                injected.append({"fault": "watcher SIGKILL, restarted", "at_s": round(at, 1),
                                 "files_in_processing": in_flight})
                time.sleep(rng.uniform(0.5, 3.0))
                watcher.start()
            elif database_url:
                cut_at = time.monotonic()
                cut = cut_database_connections(database_url)
                windows.append((cut_at - 1.0, time.monotonic() + DB_WINDOW_S))
                injected.append({"fault": "pg_terminate_backend", "at_s": round(at, 1), "connections": cut,
                                 "files_in_processing": in_flight})
            else:
                injected.append({"fault": "database connection (skipped: SQLite has no server connection to cut)",
                                 "at_s": round(at, 1)})

        # --- drain: every file reaches its end, however long the retries take ------------------------
        goods = [a for a in arrivals if a.kind in ("good", "duplicate")]
        shas = {a.sha256 for a in goods}

        def settled() -> bool:
            assert watcher.alive(), watcher.log()[-3000:]
            # Anything but a folder still waiting: a pipe or a link counts, not only a file.
            if any(not p.is_dir() for p in folder.iterdir()) or \
                    any(not p.is_dir() for p in settings.processing_dir.rglob("*")):
                return False
            with services.db.session() as session:
                filed = set(session.scalars(select(Batch.sha256)).all())
            return shas <= filed
        wait_for(settled, 240 + SECONDS, "every file to be filed or quarantined (see the logs in " + str(logs) + ")", 1.0)
        load.stop()
        web_figures = load.figures(windows)
    finally:
        load.stop()
        codes = {proc.name: proc.stop() for proc in everyone}
    assert codes["watcher"] == 0, watcher.log()[-3000:]

    # --- nothing lost, nothing filed twice ------------------------------------------------------------
    quarantined = {entry.reason["file_name"]: entry.reason for entry in list_quarantine(settings.quarantine_dir)}
    with services.db.session() as session:
        batches = {b.sha256: b for b in session.scalars(select(Batch))}
        documents = session.scalars(select(Document)).all()
        filed_events = Counter(session.scalars(select(Event.document_id).where(Event.kind == "filed")).all())
        pages_of = dict(session.execute(select(Page.document_id, func.count()).group_by(Page.document_id)).all())
        docs_of: dict[str, list[int]] = {}
        for doc in sorted(documents, key=lambda d: (d.batch_id, d.seq)):
            docs_of.setdefault(doc.batch_id, []).append(doc.page_count)
            assert pages_of.get(doc.id) == doc.page_count, f"document {doc.id}: pages lost"
    originals = {a.sha256: a for a in arrivals if a.kind == "good"}
    assert set(batches) == set(originals), "a file was filed that should not have been, or one is missing"
    for sha, arrival in originals.items():
        batch = batches[sha]
        assert batch.page_count == arrival.pages, f"{arrival.name}: {batch.page_count} pages filed of {arrival.pages}"
        assert docs_of.get(batch.id) == arrival.documents, f"{arrival.name}: documents {docs_of.get(batch.id)}"
        assert arrival.name not in quarantined, f"{arrival.name} was filed and quarantined"
    assert sorted(filed_events) == sorted(d.id for d in documents) and set(filed_events.values()) == {1}, \
        "a document was filed twice (or not at all)"
    for arrival in arrivals:
        if arrival.kind == "bad":
            reason = quarantined.get(arrival.name)
            assert reason, f"bad file {arrival.name} ({arrival.what}) is not in quarantine"
            assert reason["code"] not in ("duplicate", "internal_error") and reason["reason"], reason
            assert reason["code"] == HOSTILE_CODES.get(arrival.what, reason["code"]), (arrival.what, reason)
            if arrival.what == "hard_link":  # the file it pointed at is untouched
                assert (elsewhere / arrival.name).read_bytes() == arrival.data
        elif arrival.kind == "duplicate":
            reason = quarantined.get(arrival.name)
            assert reason and reason["code"] == "duplicate", f"second copy {arrival.name}: {reason}"
    assert len(quarantined) == sum(a.kind != "good" for a in arrivals), sorted(quarantined)
    for proc in everyone:  # a line break in a file name forged no log line
        assert not any(line.startswith(FORGED) for line in proc.log().splitlines()), proc.name

    # --- the web answered, failing only while the database connections were being cut ------------
    assert web_figures["failed_outside"] == [], web_figures
    for user in USERS:
        assert any(a.user == user and a.status == 200 for a in load.answers), f"{user} never got an answer"

    # --- and the integrity check finds nothing --------------------------------------------------------
    done = subprocess.run([sys.executable, "-m", "escr", "fixity", "--json"], env=env, capture_output=True,
                          text=True, timeout=600)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and not report.get("findings"), report

    figures = {
        "date": clock.now().strftime("%Y-%m-%d %H:%M UTC"), "escr_commit": _commit(),
        "machine": {"cores": os.cpu_count(), "load_average": [round(x, 2) for x in load_at_start]},
        "seed": SEED, "load_seconds": SECONDS, "wall_seconds": round(time.monotonic() - began, 1),
        "database": "postgresql" if database_url else "sqlite", "broker": "redis", "workers": 2,
        "files": {**Counter(a.kind for a in arrivals), "total": len(arrivals),
                  "bad_kinds": dict(Counter(a.what for a in arrivals if a.kind == "bad"))},
        "pages": {"in_good_scans": sum(a.pages for a in originals.values()),
                  "filed_in_documents": sum(d.page_count for d in documents), "documents": len(documents)},
        "faults": injected,
        "restarts": {proc.name: proc.starts - 1 for proc in everyone},
        "recovery": {"claims_resumed_by_the_watcher": watcher.log().count("resuming claim="),
                     "deferred_and_retried": watcher.log().count("deferred claim="),
                     "pages_ocred_by_worker": {w.name: w.log().count("ocr page done") for w in workers}},
        "web": web_figures,
        "outcome": {"filed_once": len(batches), "quarantined": dict(Counter(r["code"] for r in quarantined.values())),
                    "fixity_findings": len(report.get("findings") or [])},
    }
    out = Path(os.environ.get("ESCR_SOAK_REPORT") or tmp_path / "soak.json")
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
