"""The soak test's machinery (tests/test_soak.py): the load it drops, the processes it runs and
kills, the web clients it keeps busy, and the figures it writes.

Everything random comes from one seeded `random.Random`, so a run is reproducible from its seed
(the timing of the processes is not, which is the point of a soak).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from escr.pages.coversheet import CoverSheet
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

A6 = (4.13, 5.83)
# Children of tests/support/scans.CHILDREN_CSV that cover sheets name.
CHILDREN = ("AB123456", "AB123457", "CD654321")
DOC_TYPES = ("correspondence", "referral", "consent_form")


def wait_for(condition: Callable[[], bool], limit_s: float, what: str, poll_s: float = 0.5) -> None:
    """A generous bounded wait: fails with `what` instead of hanging, never asserts a duration."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


# --- the load --------------------------------------------------------------------------------------


@dataclass
class Arrival:
    """One file dropped into the intake folder, and what must become of it."""

    at: float  # seconds into the load phase
    kind: str  # good | bad | duplicate
    name: str
    data: bytes
    pages: int = 0  # pages in the file (cover sheets included)
    documents: list[int] = field(default_factory=list)  # pages of each document it holds
    what: str = ""  # for bad files: one of BAD_KINDS

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _text(n: int, page: int, pages: int) -> Any:
    lines = [f"Soak scan {n} page {page} of {pages}", "Date: 2 April 2026", "Home visit note.",
             f"Reference SOAK-{n:04d}-{page}"]
    return degrade(text_page(lines, dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=n * 10 + page)


def good_scan(n: int, rng: random.Random, folder: Path) -> Arrival:
    """A cover-sheeted scan of one or two documents, each of one or two text pages (a few OCR runs)."""
    images, dpis, documents = [], [], []
    for d in range(rng.choice((1, 1, 2))):
        pages = rng.choice((1, 1, 2))
        sheet = CoverSheet(f"B-SOAK{n:03d}{d}", (rng.choice(CHILDREN),), rng.choice(DOC_TYPES), pages)
        images.append(coversheet_page(sheet, dpi=200))
        dpis.append(200)
        for p in range(1, pages + 1):
            images.append(_text(n * 10 + d, p, pages))
            dpis.append(300)
        documents.append(pages)
    path = write_pdf(images, folder / f"good-{n:04d}.pdf", dpi=dpis)
    return Arrival(0.0, "good", f"scan_{n:04d}.pdf", path.read_bytes(), pages=len(images), documents=documents)


# Broken files, and what a hostile share can hold (issue 20): a pipe that would block an intake
# slot, a hard link to a file elsewhere on the server, a name too long for its quarantine reason
# file, and a name with a line break that would forge a log line.
BAD_KINDS = ("truncated", "random", "empty", "pipe", "hard_link", "long_name", "control_name")
# The quarantine code each hostile entry must be refused with (broken files: any but duplicate).
HOSTILE_CODES = {"pipe": "not_regular_file", "hard_link": "hardlink", "control_name": "control_characters"}
FORGED = "ERROR escr forged log line"


def bad_file(n: int, rng: random.Random, good: Arrival | None, what: str) -> Arrival:
    """A truncated PDF (when there is a good one to cut), random bytes, nothing at all, or one of
    the hostile entries (see BAD_KINDS)."""
    if what == "truncated" and good is None:
        what = "random"
    name = f"bad_{n:04d}.pdf"
    if what == "truncated" and good is not None:
        data = good.data[: len(good.data) // 3]
    elif what in ("random", "long_name", "control_name", "hard_link"):
        data = rng.randbytes(rng.randint(200, 20000))
    else:
        data = b""
    if what == "long_name":  # 248 characters: its ".part" fits in 255, "<name>.reason.json" does not
        name = f"bad_{n:04d}_" + "x" * 235 + ".pdf"
    elif what == "control_name":
        name = f"bad_{n:04d}\n{FORGED}.pdf"
    return Arrival(0.0, "bad", name, data, what=what)


def plan_load(rng: random.Random, seconds: float, folder: Path) -> list[Arrival]:
    """About one file every four seconds: six in ten good, two bad, two a second copy of a good one;
    however short the run, at least three good scans, one bad file of each kind and two copies."""
    count = max(7 + len(BAD_KINDS), round(seconds / 4))
    arrivals: list[Arrival] = []
    goods: list[Arrival] = []
    bad_count = 0
    kinds = ["good"] * 3 + ["bad"] * len(BAD_KINDS) + ["duplicate"] * 2
    kinds += [rng.choices(("good", "bad", "duplicate"), (6, 2, 2))[0] for _ in range(count - len(kinds))]
    kinds[1:] = rng.sample(kinds[1:], len(kinds) - 1)  # a good one first, so a duplicate has an original
    for n, kind in enumerate(kinds):
        if kind == "good" or (kind == "duplicate" and not goods):
            arrival = good_scan(n, rng, folder)
            goods.append(arrival)
        elif kind == "bad":
            what = BAD_KINDS[bad_count] if bad_count < len(BAD_KINDS) else rng.choice(BAD_KINDS)
            arrival = bad_file(n, rng, rng.choice(goods) if goods else None, what)
            bad_count += 1
        else:
            original = rng.choice(goods)
            arrival = Arrival(0.0, "duplicate", f"copy_{n:04d}_of_{original.name}", original.data,
                              pages=original.pages, documents=original.documents)
        arrival.at = seconds * n / count + rng.uniform(0, seconds / count / 2)
        arrivals.append(arrival)
    return arrivals


def drop(arrival: Arrival, folder: Path, elsewhere: Path) -> None:
    """Into the operator's folder as a scanner on SMB finishes a file: written aside, then renamed.
    A pipe is made there instead; a hard link points at a file of the same name in `elsewhere`
    (outside the intake folder), which must be left as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{arrival.name}.part"
    if arrival.what == "pipe":
        os.mkfifo(part)
    elif arrival.what == "hard_link":
        elsewhere.mkdir(parents=True, exist_ok=True)
        (elsewhere / arrival.name).write_bytes(arrival.data)
        os.link(elsewhere / arrival.name, part)
    else:
        part.write_bytes(arrival.data)
    part.rename(folder / arrival.name)


# --- the processes ---------------------------------------------------------------------------------


@dataclass
class Proc:
    """One `escr` subprocess in its own process group, its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> Proc:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            self.process = subprocess.Popen([sys.executable, "-m", "escr", *self.argv], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (tesseract children too): the machine died."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)

    def stop(self) -> int | None:
        """SIGTERM, as an operator stops it; SIGKILL if it does not go within a minute."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


def escr_env(home: Path, database_url: str | None, celery: dict[str, str]) -> dict[str, str]:
    """The environment of every escr process of the soak: one home, one database, one broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCR_")}
    env.update(celery, ESCR_HOME=str(home), ESCR_STABLE_SECONDS="1.0", ESCR_RESCAN_SECONDS="2")
    if database_url:
        env["ESCR_DATABASE_URL"] = database_url
    return env


# --- the web clients -------------------------------------------------------------------------------


@dataclass
class Answer:
    at: float  # time.monotonic()
    user: str
    path: str
    status: int  # 0: no answer at all (connection refused or reset)


class WebLoad:
    """Users reading and searching through the REST API with their API tokens, until stopped."""

    def __init__(self, base: str, tokens: dict[str, str], rng: random.Random, pause_s: float = 0.3) -> None:
        self.base, self.tokens, self.pause_s = base, tokens, pause_s
        self.seeds = {user: rng.randrange(2**32) for user in tokens}
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(user,), name=f"web-{user}", daemon=True)
                         for user in tokens]

    def start(self) -> WebLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def get(self, user: str, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.tokens[user]}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except OSError:
            status, body = 0, b""
        self.answers.append(Answer(time.monotonic(), user, path.split("?")[0], status))
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

    def _run(self, user: str) -> None:
        rng = random.Random(self.seeds[user])
        while not self._stop.is_set():
            child = rng.choice(CHILDREN)
            what = rng.choice(("me", "documents", "search", "child_search", "document"))
            if what == "me":
                self.get(user, "/api/v1/me")
            elif what == "documents" or what == "document":
                status, body = self.get(user, f"/api/v1/children/{child}/documents")
                items = (body or {}).get("items") or [] if status == 200 else []
                if what == "document" and items:
                    self.get(user, f"/api/v1/documents/{rng.choice(items)['id']}")
            elif what == "search":
                self.get(user, f"/api/v1/search?q=soak+scan+{rng.randrange(40)}")
            else:
                self.get(user, f"/api/v1/children/{child}/search?q=visit")
            self._stop.wait(self.pause_s)

    def figures(self, windows: list[tuple[float, float]]) -> dict[str, Any]:
        def in_window(at: float) -> bool:
            return any(start <= at <= end for start, end in windows)

        failures = [a for a in self.answers if a.status >= 500 or a.status == 0]
        return {
            "requests": len(self.answers),
            "by_status": dict(sorted(Counter(str(a.status) for a in self.answers).items())),
            "by_user": dict(sorted(Counter(a.user for a in self.answers).items())),
            "failed_in_database_window": sum(in_window(a.at) for a in failures),
            "failed_outside": [{"user": a.user, "path": a.path, "status": a.status}
                               for a in failures if not in_window(a.at)],
        }
