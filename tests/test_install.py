"""A plain (not editable) `pip install .` into a fresh virtual environment gives a working escr.

It takes about a minute (every dependency is installed), so it runs in CI (`CI` set, as .ci/run
sets it) or when ESCR_TEST_INSTALL=1, and is skipped otherwise with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What the Dockerfile copies into its build: the install must need nothing else from the repository.
SOURCES = ("pyproject.toml", "README.md", "escr", "pipelines", "config")

pytestmark = pytest.mark.skipif(not (os.environ.get("CI") or os.environ.get("ESCR_TEST_INSTALL")),
                                reason="installs escr and its dependencies (about a minute): set CI=1 or ESCR_TEST_INSTALL=1")


def test_a_plain_install_works_from_any_directory(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)],
                               capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stderr[-2000:]

    package = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import escr, os; print(os.path.dirname(escr.__file__))"],
                                  capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip())
    assert package.is_relative_to(venv), package  # the installed copy, not the repository's
    assert (package / "pipelines" / "intake.py").is_file()
    assert (package / "config" / "escr.toml").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "ESCR_HOME": str(tmp_path / "home")}
    helped = subprocess.run([str(venv / "bin" / "escr"), "--help"], capture_output=True, text=True, check=False,
                            cwd=elsewhere, env=env)
    assert helped.returncode == 0, helped.stderr
    assert "ingest" in helped.stdout and "watch" in helped.stdout
    # The default configuration ships inside the package: the document types come from it.
    types = subprocess.run([str(venv / "bin" / "escr"), "doctypes"], capture_output=True, text=True, check=False,
                           cwd=elsewhere, env=env)
    assert types.returncode == 0, types.stderr
    assert "adoption_papers" in types.stdout
