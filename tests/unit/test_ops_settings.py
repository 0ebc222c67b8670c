"""Operations settings and a deployment that is safe as shipped (docs/operations.md, docs/deployment.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import RequestFactory, override_settings
from django.views.debug import technical_500_response

from conftest import IN_CI
from streaming_app import checks

ROOT = Path(__file__).resolve().parents[2]


def check_ids(streaming: dict, **overrides) -> list[str]:
    with override_settings(STREAMING=streaming, **overrides):
        return [m.id for m in checks.check_settings() + checks.check_metrics_access()]


@pytest.mark.parametrize(
    ("streaming", "check_id"),
    [
        ({"METRICS": "yes"}, "streaming_app.E050"),
        ({"METRICS_PERMISSION_CLASSES": ["nowhere.Nothing"]}, "streaming_app.E051"),
        ({"DRAIN_ON_SIGTERM": 1}, "streaming_app.E052"),
        ({"DRAIN_TIMEOUT": 0}, "streaming_app.E053"),
    ],
)
def test_operations_settings_are_checked(streaming, check_id):
    assert check_ids(streaming) == [check_id]


def test_metrics_open_to_anyone_with_debug_off_are_a_warning():
    assert check_ids({"METRICS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}, DEBUG=False) == [
        "streaming_app.W050"
    ]


def test_the_default_metrics_access_passes_with_debug_off():
    assert check_ids({}, DEBUG=False) == []


def settings_process(**env: str) -> subprocess.CompletedProcess:
    """Import the example project's settings in a fresh interpreter with ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import project.settings as s; print(s.DEBUG, s.SECRET_KEY)"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )


def test_debug_off_refuses_the_public_demo_secret_key():
    result = settings_process(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DJANGO_SECRET_KEY" in result.stderr


def test_debug_off_takes_the_secret_key_from_the_environment():
    result = settings_process(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="from-the-environment-0123456789")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "from-the-environment-0123456789"]


# Built, not written out: the DEBUG page also shows this file's source lines around the error.
SECRETS = ["".join(parts) for parts in (("hun", "ter2"), ("redis", "-host"), ("pg", "secret"), ("db", "-host"))]
REDIS_URL = f"redis://:{SECRETS[0]}@{SECRETS[1]}:6379/0"
DATABASE_URL = f"postgres://app:{SECRETS[2]}@{SECRETS[3]}:5432/app"
LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}


def test_debug_pages_show_no_url_values():
    request = RequestFactory().get("/boom", DATABASE_URL=DATABASE_URL)  # as a WSGI server copies os.environ
    with override_settings(DEBUG=True, REDIS_URL=REDIS_URL, CHANNEL_LAYERS=LAYERS):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            page = technical_500_response(request, *sys.exc_info()).content.decode()
    assert "REDIS_URL" in page and "DATABASE_URL" in page  # listed, with their values hidden
    for secret in SECRETS:
        assert secret not in page


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_docker_compose_runs_two_web_processes_behind_a_proxy_with_redis_and_postgres():
    services = compose()["services"]
    webs = [name for name, service in services.items() if "daphne" in str(service.get("command", ""))]
    assert len(webs) == 2
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx")
    assert set(webs) <= set(proxy["depends_on"])
    assert {"redis", "postgres"} <= set(services)


def test_docker_compose_takes_secrets_from_the_environment_with_debug_off():
    services = compose()["services"]
    for name in ("web1", "web2"):
        env = services[name]["environment"]
        assert env["DJANGO_DEBUG"] == "${DJANGO_DEBUG:-0}"
        assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
        assert "${POSTGRES_PASSWORD" in env["DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "POSTGRES_HOST_AUTH_METHOD" not in services["postgres"]["environment"]


def compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) or, without it, Debian's ``docker-compose`` (1.29, the compose spec)."""
    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True, timeout=30
    ).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_is_valid():
    command = compose_command()
    if command is None:
        if IN_CI:
            pytest.fail("CI needs docker compose or docker-compose (.ci/run installs Debian's docker-compose)")
        pytest.skip("docker compose is not installed (the YAML itself is read by the tests above)")
    env = {**os.environ, "DJANGO_SECRET_KEY": "x" * 50, "POSTGRES_PASSWORD": "pw"}
    result = subprocess.run([*command, "config", "--quiet"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_deployment_guide_shows_the_shipped_nginx_config():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    shown = guide.split("```nginx\n", 1)[1].split("```", 1)[0]
    assert shown == (ROOT / "deploy" / "nginx.conf").read_text()
