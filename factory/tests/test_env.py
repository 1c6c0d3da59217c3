"""factory/env.py: typed environment readers that stop start-up with a message naming the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from factory.env import env_bool, env_int, env_list, env_networks, env_secret, env_str, env_url


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in ("X", "X_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_returns_default_when_variable_is_unset_or_empty(monkeypatch):
    assert env_str("X") is None
    assert env_str("X", "fallback") == "fallback"
    monkeypatch.setenv("X", "")
    assert env_str("X", "fallback") == "fallback"
    assert env_bool("X", True) is True
    assert env_int("X", 7) == 7
    assert env_list("X", ["a"]) == ["a"]
    assert env_url("X", schemes=("redis",)) is None


@pytest.mark.parametrize("value", ["true", "True", "TRUE", " true ", "1", "yes", "on"])
def test_reads_true_when_value_is_true_like(monkeypatch, value):
    monkeypatch.setenv("X", value)
    assert env_bool("X", False) is True


@pytest.mark.parametrize("value", ["false", "False", "FALSE", "0", "no", "off"])
def test_reads_false_when_value_is_false_like(monkeypatch, value):
    monkeypatch.setenv("X", value)
    assert env_bool("X", True) is False


@pytest.mark.parametrize("value", ["ture", "flase", "2", "-1", "y", "enabled", "true false", "none"])
def test_refuses_bool_naming_the_variable_when_value_is_not_a_boolean(monkeypatch, value):
    monkeypatch.setenv("X", value)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_bool("X", True)
    assert "X=" in str(excinfo.value)
    assert repr(value) in str(excinfo.value)


@pytest.mark.parametrize(("value", "expected"), [("80", 80), (" 443 ", 443), ("0", 0), ("-5", -5)])
def test_reads_integer_when_value_is_a_number(monkeypatch, value, expected):
    monkeypatch.setenv("X", value)
    assert env_int("X", 1) == expected


@pytest.mark.parametrize("value", ["80a", "1.5", "eighty", "0x10"])
def test_refuses_integer_naming_the_variable_when_value_is_not_a_number(monkeypatch, value):
    monkeypatch.setenv("X", value)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_int("X", 1)
    assert "X=" in str(excinfo.value)
    assert "not an integer" in str(excinfo.value)


def test_refuses_integer_when_below_the_minimum(monkeypatch):
    monkeypatch.setenv("X", "0")
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_int("X", 5, minimum=1)
    assert "X=0" in str(excinfo.value)
    assert "minimum of 1" in str(excinfo.value)
    monkeypatch.setenv("X", "1")
    assert env_int("X", 5, minimum=1) == 1


def test_splits_list_on_commas_when_items_have_spaces_and_blanks(monkeypatch):
    monkeypatch.setenv("X", " factory.example.com, ,api.example.com ,")
    assert env_list("X") == ["factory.example.com", "api.example.com"]


def test_returns_a_fresh_copy_of_the_default_list_when_unset():
    default = ["localhost"]
    value = env_list("X", default)
    value.append("evil.example")
    assert default == ["localhost"]
    assert env_list("X") == []


@pytest.mark.parametrize(
    "value", ["redis://127.0.0.1:6379/0", "rediss://:secret@cache.internal:6380/1", "unix:///run/redis.sock"]
)
def test_accepts_url_when_scheme_is_allowed(monkeypatch, value):
    monkeypatch.setenv("X", value)
    assert env_url("X", schemes=("redis", "rediss", "unix")) == value


@pytest.mark.parametrize("value", ["postgres://x", "http://cache", "127.0.0.1:6379", "redis:/missing-slash"])
def test_refuses_url_naming_variable_and_schemes_when_scheme_is_not_allowed(monkeypatch, value):
    monkeypatch.setenv("X", value)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_url("X", schemes=("redis", "rediss"))
    message = str(excinfo.value)
    assert message.startswith("X must start with one of redis://, rediss://")


def test_keeps_passwords_out_of_the_message_when_url_is_refused(monkeypatch):
    monkeypatch.setenv("X", "postgres://admin:hunter2@db.internal/factory")
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_url("X", schemes=("mysql",))
    assert "hunter2" not in str(excinfo.value)
    assert "postgres://" in str(excinfo.value)


def test_reads_secret_from_variable_when_no_file_is_named(monkeypatch):
    monkeypatch.setenv("X", "s3cret")
    assert env_secret("X") == "s3cret"
    assert env_secret("UNSET_SECRET_FOR_TEST", "fallback") == "fallback"


def test_reads_secret_from_file_when_name_file_is_set(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-the-file\n")
    monkeypatch.setenv("X", "from-the-variable")
    monkeypatch.setenv("X_FILE", str(secret))
    # The file wins (Docker secrets), and its trailing newline is not part of the secret.
    assert env_secret("X", "fallback") == "from-the-file"


def test_refuses_secret_naming_the_variable_when_file_cannot_be_read(monkeypatch, tmp_path):
    monkeypatch.setenv("X_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_secret("X")
    assert "X_FILE=" in str(excinfo.value)
    assert "cannot be read" in str(excinfo.value)


def test_refuses_secret_when_file_is_not_text(monkeypatch, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\xff\xfe\x00binary")
    monkeypatch.setenv("X_FILE", str(secret))
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_secret("X")
    assert "X_FILE=" in str(excinfo.value)


def test_refuses_secret_when_file_is_empty(monkeypatch, tmp_path):
    # An empty secret file is a broken mount, not "no secret": falling back would hide it.
    secret = tmp_path / "secret"
    secret.write_text("\n")
    monkeypatch.setenv("X_FILE", str(secret))
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_secret("X", "fallback")
    assert "X_FILE=" in str(excinfo.value)
    assert "empty" in str(excinfo.value)


def test_reads_networks_and_host_names_normalised(monkeypatch):
    monkeypatch.setenv("X", "10.1.2.3/8, 192.0.2.7 ,fd00::/8,Hooks.Plant.Local.")
    assert env_networks("X", hosts=True) == ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "hooks.plant.local"]
    monkeypatch.delenv("X")
    assert env_networks("X", ["127.0.0.1"]) == ["127.0.0.1/32"]


@pytest.mark.parametrize(("value", "hosts"), [("10.0.0.0/33", True), ("proxy.local", False), ("bad host!", True)])
def test_stops_on_a_malformed_network_entry(monkeypatch, value, hosts):
    monkeypatch.setenv("X", value)
    with pytest.raises(ImproperlyConfigured, match=r"X: .* is not valid; give a comma list of IP networks"):
        env_networks("X", hosts=hosts)
