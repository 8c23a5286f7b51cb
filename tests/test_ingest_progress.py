"""`escr ingest` on a terminal shows a bar per file (pages done of total); with --json, or when
its output goes to a pipe, it prints only its answer."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import home_env
from tests.support.scans import degrade, text_page, write_pdf

pytestmark = pytest.mark.ocr

LETTER = ["Letter from the school", "Date: 9 March 2026", "Pupil AB123456 attended every day this term."]


def escr_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run escr with stdout and stderr on a pseudo-terminal, as a person at a console sees it."""
    exe = shutil.which("escr", path=str(Path(sys.executable).parent)) or "escr"
    master, slave = pty.openpty()
    proc = subprocess.Popen([exe, *args], stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            env={**os.environ, **env, "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def test_ingest_shows_pages_done_of_total_on_a_terminal_and_only_json_with_json(with_children, tmp_path):
    scan = write_pdf([degrade(text_page(LETTER, dpi=300), seed=3), degrade(text_page(LETTER, dpi=300), seed=4)],
                     tmp_path / "school-letter.pdf")
    env = home_env(with_children)
    code, shown = escr_on_a_terminal(["ingest", str(scan), "--operator", "bs.jones"], env)
    assert code == 0, shown
    assert "school-letter.pdf" in shown and "2/2" in shown and "pages" in shown  # the bar, filled
    assert "filed" in shown

    again = write_pdf([degrade(text_page(LETTER, dpi=300), seed=5)], tmp_path / "second.pdf")
    code, quiet = escr_on_a_terminal(["ingest", str(again), "--operator", "bs.jones", "--json"], env)
    assert code == 0, quiet
    answer = json.loads(quiet)  # nothing but the JSON answer, even on a terminal
    assert answer[0]["status"] == "filed" and "pages" not in quiet.split("[", 1)[0]


def test_a_fixity_check_shows_its_stages_on_a_terminal_and_only_json_with_json(with_children):
    env = home_env(with_children)
    code, shown = escr_on_a_terminal(["fixity"], env)
    assert code == 0, shown
    assert "Fixity check" in shown and "10/10" in shown and "Done" in shown  # the bar, filled
    code, quiet = escr_on_a_terminal(["fixity", "--json"], env)
    assert code == 0, quiet
    assert json.loads(quiet)["ok"] is True and "Fixity check" not in quiet  # nothing but the answer


def test_every_stage_of_the_intake_has_words_on_the_intake_home():
    """A new stage must not show as its function name on business support's screen."""
    import ast
    import inspect

    from escr.app.homes import STAGES
    from escr.pipelines import intake

    tree = ast.parse(inspect.getsource(intake.file_scan))
    stages = [call.args[0].id for call in ast.walk(tree) if isinstance(call, ast.Call)
              and isinstance(call.func, ast.Attribute) and call.func.attr == "stage"]
    assert len(stages) >= 15
    assert [s for s in stages if s not in STAGES] == []
