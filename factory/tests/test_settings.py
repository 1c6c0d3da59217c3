"""Settings fail fast: a bad environment stops ``manage.py`` with a message naming the variable.

Each test runs ``manage.py`` in a fresh interpreter with an environment built from scratch, so
nothing from this test run (DATABASE_URL, REDIS_URL, ...) leaks in.
"""

import string
import subprocess
import sys

import pytest
from django.conf import settings

PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "factory.example.com",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


@pytest.fixture
def manage(tmp_path):
    """``manage(*args, **env)`` → CompletedProcess of ``python manage.py <args>`` under exactly ``env``."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAR_DIR": str(tmp_path / "var"), **env}
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def production_secret() -> str:
    """A key Django's deploy check accepts (50+ characters, 5+ distinct), the same in every run."""
    return (string.ascii_letters + string.digits)[:60]


def assert_refused(result: subprocess.CompletedProcess, *names: str) -> str:
    assert result.returncode != 0, f"expected a failure, got rc=0\n{result.stdout}\n{result.stderr}"
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line, result.stderr
    for name in names:
        assert name in last_line, result.stderr
    return last_line


def test_passes_check_when_environment_is_empty(manage):
    # The embedded developer stack needs no configuration at all.
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_refuses_to_start_naming_secret_key_when_debug_is_off_without_it(manage):
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="factory.example.com")
    assert_refused(result, "SECRET_KEY")


def test_refuses_to_start_naming_debug_when_it_is_misspelt(manage):
    line = assert_refused(manage("check", DEBUG="ture"), "DEBUG")
    assert "'ture'" in line


def test_refuses_to_start_naming_database_url_when_scheme_is_unsupported(manage):
    line = assert_refused(manage("check", DATABASE_URL="postgres://x"), "DATABASE_URL")
    assert "mysql://" in line


def test_refuses_to_start_naming_redis_url_when_scheme_is_unsupported(manage):
    assert_refused(manage("check", REDIS_URL="http://127.0.0.1:6379"), "REDIS_URL")


def test_refuses_to_start_naming_allowed_hosts_when_debug_is_off_without_them(manage):
    assert_refused(manage("check", DEBUG="false", SECRET_KEY=production_secret()), "ALLOWED_HOSTS")


def test_refuses_to_start_naming_the_variable_when_an_integer_is_malformed(manage):
    assert_refused(manage("check", LOGIN_FAILURE_LIMIT="five"), "LOGIN_FAILURE_LIMIT")


def test_reads_secret_key_from_file_when_secret_key_file_is_set(manage, tmp_path):
    key = production_secret()
    (tmp_path / "secret_key").write_text(key + "\n")
    env = {**PRODUCTION, "SECRET_KEY_FILE": str(tmp_path / "secret_key")}
    code = f"from django.conf import settings; print(len(settings.SECRET_KEY), settings.SECRET_KEY == {key!r})"
    result = manage("shell", "--no-imports", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["60", "True"]


def test_refuses_to_start_naming_the_file_when_secret_key_file_is_missing(manage, tmp_path):
    env = {**PRODUCTION, "SECRET_KEY_FILE": str(tmp_path / "nope")}
    assert_refused(manage("check", **env), "SECRET_KEY_FILE")


def test_passes_deploy_check_at_warning_level_when_environment_is_production(manage):
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=production_secret(), **PRODUCTION)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "no issues" in result.stdout


def test_fails_deploy_check_when_debug_is_left_on(manage):
    # The deploy check itself is a working guard: DEBUG on is reported (security.W018).
    env = {**PRODUCTION, "DEBUG": "true"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=production_secret(), **env)
    assert result.returncode != 0
    assert "security.W018" in result.stderr


def test_uses_production_security_defaults_when_debug_is_off(manage):
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.CELERY_TASK_ALWAYS_EAGER, "
        "'BrowsableAPIRenderer' in str(s.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES']))"
    )
    result = manage("shell", "--no-imports", "-c", code, SECRET_KEY=production_secret(), **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "31536000", "True", "False"]


@pytest.mark.parametrize(
    ("choice", "backend"),
    [(None, "channels_redis.pubsub.RedisPubSubChannelLayer"), ("core", "channels_redis.core.RedisChannelLayer")],
)
def test_redis_channel_layer_is_pub_sub_unless_core_is_chosen(manage, choice, backend):
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0", **({"CHANNEL_LAYER": choice} if choice else {})}
    result = manage(
        "shell", "-c", "from django.conf import settings; print(settings.CHANNEL_LAYERS['default']['BACKEND'])", **env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == backend


def test_refuses_an_unknown_channel_layer_naming_the_choices(manage):
    result = manage("check", REDIS_URL="redis://127.0.0.1:6379/0", CHANNEL_LAYER="rabbitmq")
    assert "'pubsub' (the default) or 'core'" in assert_refused(result, "CHANNEL_LAYER")
