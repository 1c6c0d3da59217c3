"""The YAML configuration: a good file becomes tags and connectors; a bad one names every problem."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from edge.config import load, parse
from edge.fields import ConfigError

GOOD = """
uplink:
  url: http://factory.example.com/
gateway:
  uid: gateway-01
  token_env: EDGE_TEST_GATEWAY_TOKEN
connectors:
  - {name: press_plc, type: opcua, url: "opc.tcp://10.0.0.5:4840", username: edge, password_file: secret.txt}
  - {name: packer_plc, type: modbus, host: 10.0.0.6, interval: 0.5}
devices:
  - uid: press-01
    token_file: secret.txt
    tags:
      - {connector: press_plc, metric: temperature, node: "ns=2;s=T", deadband: 0.5, max_interval: 60}
      - {connector: press_plc, node: "ns=2;s=S", state: {map: {1: running, 3: down}, default: idle}}
  - uid: packer-01
    token: plain-token
    tags:
      - {connector: packer_plc, metric: count_total, table: input, address: 10, type: uint32, word_order: little}
      - {connector: packer_plc, table: holding, address: 1, state: {bits: {down: 1, running: 0}}}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "secret.txt").write_text("s3cret\n")
    path = tmp_path / "edge.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    return caught.value.problems


def test_reads_connectors_devices_tokens_and_tags_when_the_file_is_valid(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_TEST_GATEWAY_TOKEN", "gw-token")
    config = load(write(tmp_path, GOOD))
    assert config.url == "http://factory.example.com"
    assert config.gateway.token == "gw-token"
    assert config.devices["press-01"].token == "s3cret"
    assert config.devices["packer-01"].token == "plain-token"
    assert config.connectors["press_plc"].password == "s3cret"
    assert config.queue_path == tmp_path.resolve() / "edge-queue.sqlite3"
    counter, bits = config.tags_of("packer_plc")
    assert (counter.metric, counter.register.table, counter.register.address, counter.register.count) == (
        "count_total", "input", 10, 2)  # fmt: skip
    assert counter.register.word_order == "little"
    assert bits.metric is None and bits.bits == (("down", 1), ("running", 0))
    state = config.tags_of("press_plc")[1]
    assert state.states == ((1, "running"), (3, "down")) and state.default_state == "idle"


def test_names_each_key_and_what_to_do_when_the_file_has_mistakes(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_TEST_GATEWAY_TOKEN", raising=False)
    bad = GOOD.replace("deadband: 0.5", "deadbnad: 0.5").replace("type: uint32", "type: uint64")
    bad = bad.replace("table: holding", "table: registers").replace("1: running, 3: down", "1: running, 3: broken")
    found = problems(tmp_path, bad)
    assert any(
        p.startswith("gateway.token_env: environment variable EDGE_TEST_GATEWAY_TOKEN is not set") for p in found
    )
    assert any(
        p.startswith("devices[0].tags[0].deadbnad: is not a known option here. Check the spelling") for p in found
    )
    assert any(p.startswith("devices[1].tags[0].type: 'uint64' is not one of int16, uint16") for p in found)
    assert any(p.startswith("devices[1].tags[1].table: 'registers' is not one of holding") for p in found)
    assert any(p.startswith("devices[0].tags[1].state.map.3: needs a whole number: one of running") for p in found)
    assert len(found) == 5, found


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (
            ("url: http://factory.example.com/", "url: factory.example.com"),
            "uplink.url: 'factory.example.com' is not an http(s) URL",
        ),
        (("token: plain-token", "token: plain-token\n    token_env: X"), "devices[1].token_env: conflicts with token"),
        (
            ("connector: packer_plc, metric", "connector: plc9, metric"),
            "devices[1].tags[0].connector: 'plc9' is not a connector",
        ),
        (("metric: temperature,", "metric: Temperature,"), "devices[0].tags[0].metric: 'Temperature' is not allowed"),
        (("max_interval: 60", "max_interval: 60, scale: ten"), "devices[0].tags[0].scale: must be a number, got 'ten'"),
        (("type: uint32", "type: uint32, deadband: 2"), "devices[1].tags[0].deadband: count_total is a piece counter"),
        (("address: 10", "address: 70000"), "devices[1].tags[0].address: must be between 0 and 65535, got 70000"),
    ],
)
def test_reports_the_key_when_one_value_is_wrong(tmp_path, monkeypatch, replace, expected):
    monkeypatch.setenv("EDGE_TEST_GATEWAY_TOKEN", "gw-token")
    found = problems(tmp_path, GOOD.replace(*replace))
    assert any(p.startswith(expected) for p in found), found


def test_lists_missing_sections_when_the_file_is_empty(tmp_path):
    assert problems(tmp_path, "{}") == [
        "uplink: is missing. Add a 'uplink:' section.",
        "uplink.url: is missing. The platform's base URL, e.g. 'url: https://factory.example.com'.",
        "connectors: is empty. List at least one entry under 'connectors:'.",
        "devices: is empty. List at least one entry under 'devices:'.",
    ]


def test_command_line_check_exits_2_with_the_problems_when_the_config_is_bad(tmp_path):
    path = write(tmp_path, GOOD.replace("type: modbus", "type: profibus"))
    result = subprocess.run(
        [sys.executable, "-m", "edge", "check", "--config", str(path)],
        capture_output=True, text=True, timeout=60, env={"EDGE_TEST_GATEWAY_TOKEN": "x", "PATH": "/usr/bin"},
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"{path} has 1 problem(s):" in result.stderr
    assert (
        "connectors[1].type: 'profibus' is not one of opcua, modbus. Use one of those words exactly." in result.stderr
    )


def test_command_line_check_accepts_a_valid_config(tmp_path):
    path = write(tmp_path, GOOD)
    result = subprocess.run(
        [sys.executable, "-m", "edge", "check", "--config", str(path)],
        capture_output=True, text=True, timeout=60, env={"EDGE_TEST_GATEWAY_TOKEN": "x", "PATH": "/usr/bin"},
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "OK (2 connector(s), 4 tag(s))" in result.stdout


def test_the_readmes_example_is_valid_once_its_secrets_and_files_exist(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("## Configuration")[1].split("```yaml")[1].split("```")[0]
    for variable in ("EDGE_GATEWAY_TOKEN", "PRESS_PLC_PASSWORD", "EDGE_TOKEN_PACKER_02"):
        monkeypatch.setenv(variable, "secret")
    (tmp_path / "certs").mkdir()
    for name in ("edge.der", "edge.pem", "plc.der"):
        (tmp_path / "certs" / name).write_text("x")
    example = example.replace("/run/secrets/press-07", str(tmp_path / "press-07.token"))
    (tmp_path / "press-07.token").write_text("secret")
    config = parse(yaml.safe_load(example), base=tmp_path)
    assert set(config.connectors) == {"press_plc", "packer_plc"} and len(config.tags) == 8
