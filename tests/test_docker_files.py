"""docker/: the image and the compose file, checked without a Docker engine.

No engine runs here, so the compose file is parsed and checked against what escr really reads:
every ESCR_* variable must name a setting and validate, every command must be an escr command,
secrets must come from the environment, and the MinIO init script is run by a real shell.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import BaseModel

from escr.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
# ${NAME}, ${NAME:-default}, ${NAME:?error}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")
ESCR_SERVICES = ("migrate", "web", "watcher", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def substitute(value: str, secrets: dict[str, str] | None = None) -> str:
    """What compose makes of a value: defaults applied, required values from `secrets`."""
    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if secrets and name in secrets:
            return secrets[name]
        return rest if kind in (":-", "-") else "0123456789abcdef"
    return VARIABLE.sub(one, value)


def setting_exists(name: str) -> bool:
    model: type[BaseModel] = Settings
    parts = name.removeprefix("ESCR_").lower().split("__")
    for n, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        nested = [a for a in (field.annotation, *typing.get_args(field.annotation))
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        if n < len(parts) - 1:
            if not nested:
                return False
            model = nested[0]
    return True


def test_every_service_is_there_and_the_long_running_ones_have_healthchecks(compose):
    svc = services(compose)
    assert set(svc) >= {"postgres", "minio", "minio-init", "redis", "migrate", "web", "watcher", "worker"}
    for name in ("postgres", "minio", "redis", "web", "watcher", "worker"):
        assert "healthcheck" in svc[name], name
    for name in ("web", "watcher"):
        assert svc[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_every_escr_variable_names_a_setting_and_validates(compose, monkeypatch):
    for name in ESCR_SERVICES:
        env = {k: v for k, v in environment(services(compose)[name]).items() if k.startswith("ESCR_")}
        unknown = [k for k in env if not setting_exists(k)]
        assert not unknown, f"{name}: no such setting {unknown}"
        for key, value in env.items():
            monkeypatch.setenv(key, substitute(value))
        settings = load_settings()  # raises ConfigError on any value that does not validate
        for key in env:
            monkeypatch.delenv(key)
        if name in ("web", "watcher"):
            assert settings.store_url == "s3://escr-records"
            assert settings.database_url and settings.database_url.startswith("postgresql+psycopg://escr:")
            assert settings.celery.broker_url and settings.celery.broker_url.endswith("@redis:6379/0")
        if name in ("watcher", "worker"):
            assert settings.metrics.port == 9100 and settings.metrics.address == "0.0.0.0"


def test_secrets_come_only_from_the_environment_and_are_required(compose):
    for name, service in services(compose).items():
        for key, value in environment(service).items():
            secret = any(word in key for word in ("PASSWORD", "SECRET", "ACCESS_KEY", "AUTH")) or "@" in value
            if secret:
                required = [m for m in VARIABLE.finditer(value) if m.group(2) == ":?"]
                assert required, f"{name}.{key} must come from a required variable, not a default"
    example = (DOCKER / "env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.M))
    text = (DOCKER / "docker-compose.yml").read_text()
    needed = {m.group(1) for m in VARIABLE.finditer(text)}
    assert needed <= listed, f"not in docker/env.example: {needed - listed}"
    assert not re.search(r"^[A-Z0-9_]*(PASSWORD|SECRET)[A-Z0-9_]*=\S", example, flags=re.M)  # no sample secret


def test_workers_are_stateless_least_privileged_and_scalable(compose):
    worker = services(compose)["worker"]
    assert worker["command"] == ["worker"]
    assert "volumes" not in worker and "ports" not in worker and "container_name" not in worker
    assert worker["read_only"] is True and "/tmp" in worker["tmpfs"]
    assert worker["deploy"]["replicas"] >= 2
    # The broker and its own metrics only: no database, no object store credentials.
    assert all(k.startswith(("ESCR_CELERY__", "ESCR_METRICS__")) for k in environment(worker))


def test_the_watcher_and_web_share_one_data_volume_holding_the_intake_folder(compose):
    dockerfile = (DOCKER / "Dockerfile").read_text()
    home = re.search(r"ESCR_HOME=(\S+)", dockerfile).group(1)
    for name in ("web", "watcher"):
        assert f"escr-data:{home}" in services(compose)[name]["volumes"], name
    assert "escr-data" in compose["volumes"]


def test_the_commands_run_are_escr_commands(compose):
    from escr.cli.main import app

    commands = set(typer.main.get_command(app).commands)
    for name in ESCR_SERVICES:
        service = services(compose)[name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert service["command"][0] in commands, name
    assert (REPO / services(compose)["web"]["build"]["context"].replace("..", ".")).resolve() == REPO


def test_the_image_has_tesseract_and_the_makefile_packages_and_runs_as_a_plain_user():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    make_packages = re.search(r"^APT_PACKAGES := (.+)$", (REPO / "Makefile").read_text(), flags=re.M).group(1).split()
    install = re.search(r"apt-get install[^\n]*\n((?:.*\\\n)*.*)", dockerfile).group(0)
    assert "tesseract-ocr-eng" in make_packages
    for package in make_packages:
        assert package in install, package
    user = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)
    assert user and user[-1] not in ("root", "0")
    # A plain install (not editable): the default configuration is read from the package itself.
    assert "pip install ." in dockerfile and "pip install -e" not in dockerfile
    assert "COPY config ./config" in dockerfile and "ESCR_CONFIG_DIR=" not in dockerfile


def test_the_minio_init_script_makes_a_locked_bucket_and_a_user_that_cannot_unlock(compose, tmp_path):
    init = services(compose)["minio-init"]
    script = init["command"][0].replace("$$", "$")
    calls, policy = tmp_path / "calls.txt", tmp_path / "policy.json"
    fake_mc = tmp_path / "bin" / "mc"
    fake_mc.parent.mkdir()
    # A stand-in for MinIO's client: it records its arguments, keeps the policy it is given,
    # and reports the policy attached.
    fake_mc.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case "$1 $2 $3" in
  "admin policy create") while IFS= read -r line || [ -n "$line" ]; do echo "$line"; done < "$6" > {policy} ;;
  "admin user info") echo "PolicyName: escr-app" ;;
esac
""")
    fake_mc.chmod(fake_mc.stat().st_mode | stat.S_IXUSR)
    secrets = {"MINIO_ROOT_USER": "root", "MINIO_ROOT_PASSWORD": "rootpw", "ESCR_S3_ACCESS_KEY": "escr-app",
               "ESCR_S3_SECRET_KEY": "apppw"}
    env = {k: substitute(v, secrets) for k, v in environment(init).items()}
    done = subprocess.run(["/bin/sh", "-c", script], env={**env, "PATH": f"{fake_mc.parent}:/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    bucket = env["ESCR_BUCKET"]
    store_url = substitute(environment(services(compose)["watcher"])["ESCR_STORE_URL"])
    assert store_url == f"s3://{bucket}"
    made = calls.read_text().splitlines()
    assert f"mb --ignore-existing --with-lock store/{bucket}" in made
    granted = json.loads(policy.read_text())
    actions = {a for statement in granted["Statement"] for a in statement["Action"]}
    resources = {r for statement in granted["Statement"] for r in statement["Resource"]}
    assert {"s3:PutObject", "s3:GetObject", "s3:PutObjectRetention"} <= actions
    assert not any(a.endswith("*") or "Bypass" in a or "PutBucket" in a or "DeleteBucket" in a for a in actions)
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    assert "rootpw" not in done.stdout and "apppw" not in done.stdout


def test_everything_the_dockerfile_copies_is_in_its_build_context():
    """The build context is what Dockerfile.dockerignore lets through: a source the Dockerfile
    COPYs but the ignore file leaves out fails `docker compose up --build` with "not found"."""
    ignore = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = [source for line in (DOCKER / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
              for source in line.split()[1:-1] if not source.startswith("--")]
    assert copied and set(copied) <= allowed, f"COPY sources left out of the build context: {set(copied) - allowed}"
    assert all((REPO / source).exists() for source in copied)
