"""Scale-out: real `escr worker` processes on a real broker OCR the pages of one scan together.

The brokers are the ones on this machine's loopback: Redis (a dedicated database number) and
RabbitMQ, each test on a queue of its own. Outside CI a broker that is not running skips its
tests; in CI (CI set) it fails them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import kombu
import pikepdf
import pytest
import redis
from sqlalchemy import func, select

from escr.errors import OcrError
from escr.intake.receipt import claim_copy
from escr.pages.imaging import render_page
from escr.pages.ocr import PageJob, ocr_job
from escr.pipelines import intake
from escr.record.models import Batch, Document
from escr.runtime.distributed import LocalPageOcr, open_page_ocr
from escr.runtime.tasks import (
    WIRE_VERSION,
    CeleryPageOcr,
    decode_page,
    encode_page,
    extract_page,
    ocr_message,
    page_message,
    task_id,
)
from escr.services import Services, open_services
from escr.settings import CelerySettings, OcrSettings
from tests.support.intake import free_port
from tests.support.scans import degrade, text_page, write_pdf

# Celery's Redis backend calls a setex that redis-py 8 marks deprecated: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")

REDIS_URL = os.environ.get("ESCR_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
AMQP_URL = os.environ.get("ESCR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
A5 = (5.83, 8.27)
PAGES = 6
SETTINGS = OcrSettings()


def visit_page(n: int):
    """A page that takes tesseract a second or two, so a worker can be caught in the middle of it."""
    lines = [f"Visit note page {n} of {PAGES}", "Date: 2 April 2026", "NHS number 943 476 5919"]
    lines += [f"Line {i}: the family were at home and the house was warm." for i in range(12)]
    return degrade(text_page(lines, dpi=300, size_inches=A5, font_pt=10), noise=0.0003, seed=n)


# --- without a broker: the wire format and the one-page PDFs -----------------------------------


def test_a_page_sent_to_a_worker_renders_exactly_as_inside_the_scan(tmp_path):
    pages = [text_page([f"Page {n}", "Some words on it."], dpi=200, size_inches=(4, 5)) for n in range(3)]
    scan = write_pdf(pages, tmp_path / "scan.pdf", dpi=200)
    with pikepdf.open(scan) as source:
        one = extract_page(source, 1)
    single = tmp_path / "one.pdf"
    single.write_bytes(one)

    whole = render_page(scan, "application/pdf", 1, dpi=150)
    alone = render_page(single, "application/pdf", 0, dpi=150)

    assert alone.tobytes() == whole.tobytes()
    with pikepdf.open(single) as pdf:
        assert len(pdf.pages) == 1
        assert len(pdf.pages[0].get_images()) == 1  # that page's image only, not the whole scan's
    assert len(one) < scan.stat().st_size * 0.6


@pytest.mark.ocr
@pytest.mark.real_ocr
def test_a_page_ocred_from_its_message_comes_back_unchanged_through_json(tmp_path):
    scan = write_pdf([visit_page(1)], tmp_path / "scan.pdf")
    local = ocr_job(PageJob(path=scan, media_type="application/pdf", index=0, dpi=300), SETTINGS)
    with pikepdf.open(scan) as source:
        message = page_message(extract_page(source, 0), dpi=300, settings=SETTINGS)

    remote = ocr_message(json.loads(json.dumps(message)), max_bytes=10**8)
    back = decode_page(json.loads(json.dumps(encode_page(remote))))

    assert back == remote
    assert back.text == local.text and "Visit note page 1" in back.text
    assert back.text_pdf.startswith(b"%PDF")


def test_a_worker_reads_a_cover_sheet_from_the_page_it_renders_and_says_so_through_json(tmp_path):
    from escr.pages.coversheet import CoverSheet
    from tests.support.scans import coversheet_page

    sheet = CoverSheet("B-7K3Q9X2M", ("AB123456", "AB123457"), "referral", 2)
    scan = write_pdf([coversheet_page(sheet, dpi=300)], tmp_path / "cover.pdf")
    with pikepdf.open(scan) as source:
        message = page_message(extract_page(source, 0), dpi=300, settings=SETTINGS, find_cover=True)

    back = decode_page(json.loads(json.dumps(encode_page(ocr_message(json.loads(json.dumps(message)), max_bytes=10**8)))))

    assert back.cover == sheet and back.tesseract_runs == 0 and back.text == ""
    forged = {**encode_page(back), "cover": "ESCR1;b=%ZZ"}
    with pytest.raises(OcrError) as malformed:
        decode_page(forged)
    assert malformed.value.code == "wire_malformed"


def test_a_malformed_or_foreign_message_is_refused_with_a_code(tmp_path):
    with pytest.raises(OcrError) as version:
        ocr_message({"v": 99, "pdf": "", "dpi": 300, "ocr": {}}, max_bytes=1000)
    assert version.value.code == "wire_version"
    with pytest.raises(OcrError) as malformed:
        ocr_message({"v": WIRE_VERSION, "pdf": "not base64!", "find_cover": False, "dpi": 300, "ocr": {}}, max_bytes=1000)
    assert malformed.value.code == "wire_malformed"
    big = base64.b64encode(b"%PDF" + b"x" * 2000).decode()
    with pytest.raises(OcrError) as too_large:
        ocr_message({"v": WIRE_VERSION, "pdf": big, "find_cover": False, "dpi": 300, "ocr": SETTINGS.model_dump()}, max_bytes=1000)
    assert too_large.value.code == "page_too_large"


def test_task_ids_are_the_same_for_the_same_claim_and_page_only():
    job = PageJob(path=Path("x.pdf"), media_type="application/pdf", index=2, dpi=300)
    message = {"v": 1, "pdf": "AAAA", "dpi": 300, "ocr": {}}
    assert task_id("claim-1", job, message) == task_id("claim-1", job, dict(message))
    assert task_id("claim-1", job, message) != task_id("claim-2", job, message)
    assert task_id("claim-1", job, message) != task_id("claim-1", job, {**message, "dpi": 200})
    assert task_id("claim-1", job, message) != task_id("claim-1", job, {**message, "pdf": "AAAB"})
    assert task_id("claim-1", job, message) == task_id("claim-1", job, {**message, "sent_at": 5.0})


def test_with_the_broker_down_a_scan_is_deferred_not_quarantined(settings, tmp_path):
    down = settings.model_copy(update={"celery": CelerySettings(broker_url="redis://127.0.0.1:1/0")})
    scan = write_pdf([text_page(["Some words on it."], dpi=200, size_inches=(4, 5))], tmp_path / "scan.pdf", dpi=200)
    claim = claim_copy(scan, down.processing_dir, operator="bs.jones", device="mfd-2")

    result = intake.run(claim, open_services(down))

    assert result.status == "deferred"
    assert claim.path.exists()  # waits in processing/ for the retry


def test_a_worker_without_a_broker_says_so_and_stops(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCR_")}
    done = subprocess.run([sys.executable, "-m", "escr", "worker"], env={**env, "ESCR_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "no broker configured" in done.stderr and "ESCR_CELERY__BROKER_URL" in done.stderr


def test_without_a_broker_pages_are_ocred_in_this_process(tmp_path):
    from escr.settings import load_settings

    with open_page_ocr(load_settings(home=tmp_path)) as page_ocr:
        assert isinstance(page_ocr, LocalPageOcr)


# --- real brokers, real workers -----------------------------------------------------------------


@dataclass
class Broker:
    name: str
    celery: CelerySettings

    def env(self) -> dict[str, str]:
        return {"ESCR_CELERY__BROKER_URL": self.celery.broker_url or "",
                "ESCR_CELERY__RESULT_BACKEND": self.celery.result_backend or "",
                "ESCR_CELERY__QUEUE": self.celery.queue,
                "ESCR_CELERY__VISIBILITY_TIMEOUT_S": str(self.celery.visibility_timeout_s)}


def _reachable(url: str) -> bool:
    try:
        with kombu.Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any failure to connect means unreachable
        return False


def require_broker(url: str, name: str) -> None:
    """Skip when the broker is not running here, except in CI, where that is a failure."""
    if _reachable(url):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not reachable in CI; .ci/run must start it")
    pytest.skip(f"{name} is not running on this machine")


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request) -> Iterator[Broker]:
    require_broker(REDIS_URL, "Redis")  # the result backend in both cases
    if request.param == "rabbitmq":
        require_broker(AMQP_URL, "RabbitMQ")
    queue = f"escr-test-{uuid.uuid4().hex[:12]}"
    url = REDIS_URL if request.param == "redis" else AMQP_URL
    # A short visibility timeout, so a killed worker's page is redone within seconds (Redis).
    yield Broker(request.param, CelerySettings(broker_url=url, result_backend=REDIS_URL, queue=queue,
                                               visibility_timeout_s=6, wait_timeout_s=240))
    with kombu.Connection(url, connect_timeout=5) as conn:
        try:
            conn.default_channel.queue_delete(queue)
        except Exception:  # noqa: BLE001 - never declared when the test failed early
            pass
    test_db = redis.Redis.from_url(REDIS_URL)
    for key in test_db.scan_iter(match=f"*{queue}*"):  # kombu's bindings of this test's queue
        test_db.delete(key)


@pytest.fixture
def services(services, broker):
    """The suite's services (database, store) with page OCR sent to this test's queue."""
    return Services(settings=services.settings.model_copy(update={"celery": broker.celery}),
                    db=services.db, store=services.store)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path
    metrics_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def started(self) -> list[str]:
        return [line.split("task=")[1].split()[0] for line in self.log().splitlines() if "ocr page started" in line]

    def done(self) -> list[str]:
        return [line.split("task=")[1].split()[0] for line in self.log().splitlines() if "ocr page done" in line]

    def pages_done(self) -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        return sum(float(line.split()[-1]) for line in body.splitlines()
                   if line.startswith('escr_worker_pages_total{status="ok"}'))

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: the machine died."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


@pytest.fixture
def start_worker(broker, tmp_path) -> Iterator[Callable[[str], Worker]]:
    workers: list[Worker] = []

    def start(name: str) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESCR_")}
        # A worker has the broker and nothing else: no home, no database, no store.
        env.update(broker.env(), ESCR_HOME=str(tmp_path / f"{name}-has-no-home"))
        log_path = tmp_path / f"{name}.log"
        port = free_port()
        hostname = f"{name}-{uuid.uuid4().hex[:6]}@test"
        process = subprocess.Popen(
            [sys.executable, "-m", "escr", "worker", "--concurrency", "1", "--hostname", hostname,
             "--metrics-port", str(port)],
            env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        worker = Worker(name, process, log_path, port)
        workers.append(worker)
        wait_for(lambda: " ready." in worker.log() or process.poll() is not None, 90, f"worker {name} to start")
        assert process.poll() is None, worker.log()[-3000:]
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()  # warm shutdown: a page in hand is finished or handed back
    for worker in workers:
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert not (tmp_path / "a-has-no-home").exists() and not (tmp_path / "b-has-no-home").exists()


def wait_for(condition: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def ingest(services, scan: Path):
    claim = claim_copy(scan, services.settings.processing_dir, operator="bs.jones", device="mfd-2")
    return claim, intake.run(claim, services)


def filed_once(services, pages: int = PAGES) -> None:
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 1
        (doc,) = session.scalars(select(Document)).all()
        texts = [page.text for page in sorted(doc.pages, key=lambda p: p.seq)]
    assert len(texts) == pages
    for n, text in enumerate(texts, start=1):
        # Each page's own text, in page order (a speckle read as a full stop is not the point here).
        assert f"Visit note page {n} of {PAGES}" in re.sub(r"[^\w]+", " ", text)


def leftover_text(claim_id: str) -> list[bytes]:
    """Results of this claim's pages still holding OCR text in the result backend."""
    backend = redis.Redis.from_url(REDIS_URL)
    keys = backend.scan_iter(match=f"celery-task-meta-escr-ocr-{claim_id}-*")
    return [key for key in keys if b"Visit note" in (backend.get(key) or b"")]


@pytest.mark.ocr
def test_two_workers_ocr_one_scan_together_and_it_is_filed_once(with_children, start_worker, tmp_path):
    services = with_children
    a, b = start_worker("a"), start_worker("b")
    scan = write_pdf([visit_page(n) for n in range(1, PAGES + 1)], tmp_path / "visit.pdf")

    claim, result = ingest(services, scan)

    assert result.status == "filed", result
    (doc,) = result.documents
    assert doc["pages"] == PAGES and doc["children"] == ["AB123456"]
    filed_once(services)
    # Both machines did pages, and between them every page once.
    assert a.pages_done() >= 1 and b.pages_done() >= 1
    assert a.pages_done() + b.pages_done() == PAGES
    # The OCR text does not stay behind in the result backend, nor go into the workers' logs.
    assert leftover_text(claim.claim_id) == []
    assert "Visit note" not in a.log() + b.log() and "943 476" not in a.log() + b.log()


@pytest.mark.ocr
def test_a_worker_killed_mid_page_is_replaced_and_the_scan_is_filed_once(with_children, start_worker, tmp_path):
    services = with_children
    a, b = start_worker("a"), start_worker("b")
    scan = write_pdf([visit_page(n) for n in range(1, PAGES + 1)], tmp_path / "visit.pdf")

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(ingest, services, scan)
        wait_for(lambda: bool(a.started()), 120, "worker a to start a page")
        a.kill()
        caught = a.started()[-1]
        assert caught not in a.done()  # a died in the middle of that page
        claim, result = running.result(timeout=300)

    assert result.status == "filed", result
    filed_once(services)
    assert caught in b.done()  # the page a was doing was done again, by b
    assert leftover_text(claim.claim_id) == []


@pytest.mark.ocr
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_with_no_worker_running_the_scan_waits_and_is_filed_when_one_starts(with_children, start_worker, tmp_path):
    services = with_children
    settings = services.settings
    impatient = settings.model_copy(update={"celery": settings.celery.model_copy(update={"wait_timeout_s": 2.0})})
    scan = write_pdf([visit_page(n) for n in range(1, 3)], tmp_path / "visit.pdf")
    claim = claim_copy(scan, settings.processing_dir, operator="bs.jones", device="mfd-2")

    with open_page_ocr(impatient) as page_ocr:
        assert isinstance(page_ocr, CeleryPageOcr)
        waited = intake.run(claim, services, page_ocr=page_ocr)

    assert waited.status == "deferred"  # not quarantined: nothing is wrong with the scan
    assert claim.path.exists() and not settings.quarantine_dir.joinpath(claim.claim_id).exists()
    a = start_worker("a")
    result = intake.run(claim, services)
    assert result.status == "filed", result
    filed_once(services, pages=2)
    # The pages sent the first time are done or skipped, and no text is left behind either way.
    wait_for(lambda: len(a.done()) + a.log().count("ocr page skipped") >= 4, 120, "the first copies")
    assert leftover_text(claim.claim_id) == []
