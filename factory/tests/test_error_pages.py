"""The site's own error pages (templates/403.html, 404.html, 500.html; factory/exceptions.py), with
DEBUG off as in production (pytest-django runs with DEBUG off), the header's Admin link, and the
favicon. `make run`'s settings (DEBUG_PAGES=false) are covered end to end in test_shell_browser.py."""

import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import path

from conftest import assert_status
from devices.tests.factories import make_user
from factory.urls import handler403, handler404, handler500  # noqa: F401 (this module is a URLconf too)
from factory.urls import urlpatterns as site_urlpatterns

pytestmark = pytest.mark.django_db

NEEDS_OPERATOR = "Acknowledging alarms needs the operator role on plant 'Plant A'."


def refuse_with_reason(request):
    raise PermissionDenied(NEEDS_OPERATOR)


def refuse_bare(request):
    raise PermissionDenied


def crash(request):
    raise RuntimeError("a bug")


# The site's URLs plus three views that fail, for the tests marked with this module as URLconf.
urlpatterns = [
    path("test/refuse-with-reason/", refuse_with_reason),
    path("test/refuse/", refuse_bare),
    path("test/crash/", crash),
    *site_urlpatterns,
]
failing_views = pytest.mark.urls(__name__)


def html(response) -> str:
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    return response.content.decode()


def links(page: str) -> dict[str, str]:
    """Link text → href of the page's ``<a>`` elements (tags inside the text dropped)."""
    found = re.findall(r'<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', page, re.S)
    return {re.sub(r"<[^>]+>", "", text).strip(): href for href, text in found}


def test_unknown_page_answers_the_branded_404_with_a_way_home(client_for, viewer):
    page = html(assert_status(client_for(viewer).get("/no-such-page/"), 404))
    assert "Page not found" in page and "There is no page at <code>/no-such-page/</code>" in page
    assert links(page)["Go to your plants"] == "/"
    assert 'href="/static/css/factory.css"' in page  # the site's look, not Django's bare page


def test_404_of_an_anonymous_visitor_offers_the_login(db):
    page = html(assert_status(Client().get("/no-such-page/"), 404))
    assert links(page)["Log in"] == "/accounts/login/"
    assert "Go to your plants" not in page


def test_404_of_another_plant_says_it_may_not_be_yours_without_djangos_generic_message(client_for, viewer, plant_b):
    page = html(assert_status(client_for(viewer).get(f"/plants/{plant_b.pk}/"), 404))
    assert "a plant you hold no role on" in page
    assert "matches the given query" not in page


def test_404_shows_the_message_a_view_raised_it_with(client_for, viewer):
    page = html(assert_status(client_for(viewer).get("/analytics/oee/", {"plant": "999999"}), 404))
    assert "No such plant among yours." in page


@failing_views
def test_403_says_which_permission_is_missing_when_the_refusal_names_it(client_for, viewer):
    page = html(assert_status(client_for(viewer).get("/test/refuse-with-reason/"), 403))
    assert "You may not do this" in page and NEEDS_OPERATOR.replace("'", "&#x27;") in page
    assert links(page)["Go to your plants"] == "/"


@failing_views
def test_403_without_a_reason_explains_the_roles_and_whom_to_ask(client_for, viewer):
    page = html(assert_status(client_for(viewer).get("/test/refuse/"), 403))
    assert "lacks the permission" in page and "Ask an admin of the plant" in page


def test_expired_login_form_answers_the_branded_403_that_says_to_reload(db):
    client = Client(enforce_csrf_checks=True)
    page = html(assert_status(client.post("/accounts/login/", {"username": "a", "password": "b"}), 403))
    assert "The form could not be sent" in page and "Reload the page" in page


@failing_views
def test_crash_answers_the_branded_500_with_a_way_home(client_for, viewer):
    client = client_for(viewer)
    client.raise_request_exception = False
    page = html(assert_status(client.get("/test/crash/"), 500))
    assert "Something went wrong on our side" in page and "has been logged" in page
    assert links(page)["Go to your plants"] == "/"
    assert "a bug" not in page and "Traceback" not in page


@pytest.mark.parametrize(
    ("username", "fields", "role", "sees_admin"),
    [
        ("viewer1", {}, "viewer", False),
        ("operator1", {}, "operator", False),
        ("plantadmin1", {}, "admin", True),  # plant admins use the admin without is_staff (factory/admin.py)
        ("staff1", {"is_staff": True}, None, True),
        ("root1", {"is_staff": True, "is_superuser": True}, None, True),
    ],
)
def test_header_links_to_the_admin_only_for_users_the_admin_lets_in(
    client_for, plant_a, username, fields, role, sees_admin
):
    user = make_user(username, plant=plant_a if role else None, role=role, **fields)
    client = client_for(user)
    page = html(assert_status(client.get("/no-such-page/"), 404))  # any page with the header
    assert ("Admin" in links(page)) is sees_admin
    admin = client.get("/admin/")
    assert admin.status_code == (200 if sees_admin else 302), "the link is shown exactly when the admin opens"


def test_favicon_is_linked_and_served_as_svg_with_a_png_and_ico_fallback(client_for, viewer):
    page = html(assert_status(client_for(viewer).get("/no-such-page/"), 404))
    icons = dict(re.findall(r'<link rel="icon" href="([^"]+)"[^>]* type="([^"]+)"', page))
    assert icons == {"/static/img/favicon.svg": "image/svg+xml", "/static/img/favicon-32.png": "image/png"}
    client = Client()
    for href, content_type in icons.items():
        response = assert_status(client.get(href), 200)
        assert response["Content-Type"].startswith(content_type)
    ico = client.get("/favicon.ico", follow=True)  # asked for by pages that name no icon (admin, ReDoc, JSON)
    assert_status(ico, 200)
    assert b"".join(ico.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_debug_pages_false_keeps_the_developer_defaults_but_turns_debug_off():
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.WHITENOISE_USE_FINDERS, s.SECURE_SSL_REDIRECT, s.SECRET_KEY.startswith('django-insecure'))"
    )
    env = {"PATH": "/usr/bin:/bin", "DEBUG_PAGES": "false"}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.splitlines()[-1].split() == ["False", "True", "False", "True"], result.stderr
