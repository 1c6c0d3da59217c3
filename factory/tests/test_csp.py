"""The Content-Security-Policy header and the settings around it (README "Security headers"); what
a browser does with the policy is in test_csp_browser.py."""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import assert_status

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]


def directives(header: str) -> dict[str, str]:
    return dict((part.strip().split(" ", 1) + [""])[:2] for part in header.split(";"))


def test_every_page_gets_the_strict_policy_with_the_hosts_websocket(client):
    response = assert_status(client.get("/accounts/login/"), 200)
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'self'" and policy["form-action"] == "'self'"
    assert policy["connect-src"] == "'self' ws://testserver wss://testserver"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "Content-Security-Policy-Report-Only" not in response


def test_a_page_over_https_allows_only_the_secure_websocket(client, settings):
    settings.SECURE_SSL_REDIRECT = False
    response = assert_status(client.get("/accounts/login/", secure=True), 200)
    assert directives(response["Content-Security-Policy"])["connect-src"] == "'self' wss://testserver"


def test_only_the_redoc_page_allows_inline_styles_by_nonce_and_hash(client):
    redoc = assert_status(client.get("/api/docs/"), 200)
    styles = directives(redoc["Content-Security-Policy"])["style-src"].split()
    nonce = re.search(r'nonce="([^"]+)"', redoc.content.decode()).group(1)  # on static/api/redoc.js
    assert styles[:2] == ["'self'", f"'nonce-{nonce}'"] and len(styles) == 4, styles
    assert all(source.startswith("'sha256-") for source in styles[2:]), styles
    swagger = assert_status(client.get("/api/swagger/"), 200)
    assert directives(swagger["Content-Security-Policy"])["style-src"] == "'self'"


def test_report_only_mode_sends_the_same_policy_without_enforcing_it(client, settings):
    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY, settings.CONTENT_SECURITY_POLICY = policy, None
    response = assert_status(client.get("/accounts/login/"), 200)
    assert "Content-Security-Policy" not in response
    assert directives(response["Content-Security-Policy-Report-Only"])["script-src"] == "'self'"


# The settings module alone (no Django set-up): what it makes of the environment.
SETTINGS_PROBE = """
import json
from factory import settings
print(json.dumps({"enforced": settings.CONTENT_SECURITY_POLICY,
                  "report_only": settings.CONTENT_SECURITY_POLICY_REPORT_ONLY,
                  "docs_login": settings.API_DOCS_REQUIRE_LOGIN}))
"""


def settings_under(tmp_path, **env) -> dict:
    """The policies and the docs setting that the settings module makes of ``env``."""
    base = {name: value for name, value in os.environ.items() if not name.startswith(("CSP_", "API_DOCS_", "DEBUG"))}
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=BASE_DIR,
        env={**base, "VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_environment_switches_report_only_mode_the_report_uri_and_the_docs_login(tmp_path):
    embedded = settings_under(tmp_path)
    assert embedded["enforced"]["DIRECTIVES"]["script-src"] == ["'self'"] and embedded["report_only"] is None
    assert "report-uri" not in embedded["enforced"]["DIRECTIVES"] and embedded["docs_login"] is False

    rollout = settings_under(tmp_path, CSP_REPORT_ONLY="true", CSP_REPORT_URI="https://csp.example.com/report")
    assert rollout["enforced"] is None and rollout["report_only"]["DIRECTIVES"]["script-src"] == ["'self'"]
    assert rollout["report_only"]["DIRECTIVES"]["report-uri"] == ["https://csp.example.com/report"]

    production = {"DEBUG": "false", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "factory.example.com"}
    assert settings_under(tmp_path, **production)["docs_login"] is True
    assert settings_under(tmp_path, **production, API_DOCS_REQUIRE_LOGIN="false")["docs_login"] is False


DOCS_PAGES = ["/api/docs/", "/api/swagger/", "/api/swagger/?script="]


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_send_an_anonymous_person_to_the_login_page_when_required(client, settings, path):
    settings.API_DOCS_REQUIRE_LOGIN = True
    response = assert_status(client.get(path), 302)
    assert response["Location"].startswith("/accounts/login/?next=/api/")


def test_schema_answers_an_anonymous_client_401_saying_how_to_authenticate_when_required(client, settings):
    settings.API_DOCS_REQUIRE_LOGIN = True
    response = assert_status(client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"), 401)
    assert "API_DOCS_REQUIRE_LOGIN" in response.json()["detail"] and "Bearer" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/api/schema/", *DOCS_PAGES])
def test_docs_and_schema_open_to_a_logged_in_user_when_required(client_for, viewer, settings, path):
    settings.API_DOCS_REQUIRE_LOGIN = True
    assert_status(client_for(viewer).get(path), 200)


@pytest.mark.parametrize("path", ["/api/schema/", *DOCS_PAGES])
def test_docs_and_schema_open_to_anyone_when_not_required(client, settings, path):
    settings.API_DOCS_REQUIRE_LOGIN = False
    assert_status(client.get(path), 200)


class _Scripts(HTMLParser):
    """Every ``<script>``: its attributes and whether it has a body."""

    def __init__(self):
        super().__init__()
        self.scripts, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append([self._open, ""])

    def handle_data(self, data):
        if self._open is not None:
            self.scripts[-1][1] += data.strip()

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def test_swagger_ui_is_started_by_a_script_file_not_an_inline_script(client):
    page = assert_status(client.get("/api/swagger/"), 200).content.decode()
    parser = _Scripts()
    parser.feed(page)
    assert parser.scripts and all(attrs.get("src") and not body for attrs, body in parser.scripts), parser.scripts
    init = parser.scripts[-1][0]["src"]
    assert init.startswith("/api/swagger/?") and "script" in init
    script = assert_status(client.get(init), 200)
    assert script["Content-Type"].startswith("application/javascript") and b"SwaggerUIBundle" in script.content
    assert "<style" not in page


# Markup the policy refuses, in a template of a page (e-mail templates are not pages: mail clients
# need their inline styles). An executable <script> with a body; an on…= handler; javascript: URLs;
# <style> blocks and style="" attributes.
REFUSED = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>\s*[^<\s]", re.I), "inline <script>"),
    (re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"<style[\s>]", re.I), "<style> block"),
    (re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I), 'style="" attribute'),
]
EMAIL_TEMPLATES = ("templates/alerts/notification.html", "analytics/templates/analytics/email/")
COMMENTS = re.compile(r"{% comment %}.*?{% endcomment %}|{#.*?#}", re.S)


def test_no_page_template_has_markup_the_policy_refuses():
    templates = [*BASE_DIR.glob("templates/**/*.html"), *BASE_DIR.glob("*/templates/**/*.html")]
    assert len(templates) > 15
    found = [
        f"{path.relative_to(BASE_DIR)}: {what}"
        for path in templates
        if not str(path.relative_to(BASE_DIR)).startswith(EMAIL_TEMPLATES)
        for pattern, what in REFUSED
        if pattern.search(COMMENTS.sub("", path.read_text()))
    ]
    assert found == []
