"""API errors are JSON with a ``detail`` a person can act on; the HTML site keeps HTML errors."""

import json

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from conftest import assert_status
from devices.models import Plant
from factory.exceptions import not_found, server_error

pytestmark = pytest.mark.django_db


def assert_json_detail(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    detail = json.loads(response.content)["detail"]
    assert isinstance(detail, str) and detail
    return detail


def test_answers_404_json_with_detail_when_api_path_is_unknown(client_for, superuser):
    response = assert_status(client_for(superuser).get("/api/v1/nope/"), 404)
    assert "/api/v1/nope/" in assert_json_detail(response)
    assert "/api/docs/" in response.json()["detail"]


def test_answers_404_json_when_anonymous_asks_for_unknown_api_path(db):
    response = assert_status(Client().get("/api/v1/nope/"), 404)
    assert_json_detail(response)


def test_answers_404_json_when_api_object_does_not_exist(client_for, superuser):
    response = assert_status(client_for(superuser).get("/api/v1/plants/999999/"), 404)
    assert_json_detail(response)


def test_answers_404_html_when_site_path_is_unknown(db):
    response = assert_status(Client().get("/nope/"), 404)
    assert response["Content-Type"].startswith("text/html")


def test_answers_400_json_when_body_is_malformed_json(client_for, superuser):
    response = client_for(superuser).post(
        "/api/v1/plants/", data='{"name": "Werk", "time_zone": ', content_type="application/json"
    )
    assert_status(response, 400)
    assert "JSON parse error" in assert_json_detail(response)
    assert not Plant.objects.filter(name="Werk").exists()


def test_answers_400_json_when_token_request_body_is_malformed_json(db):
    response = Client().post("/api/v1/auth/token/", data="{not json", content_type="application/json")
    assert_status(response, 400)
    assert "JSON parse error" in assert_json_detail(response)


def test_answers_400_json_with_detail_when_body_is_a_json_list(client_for, superuser):
    response = assert_status(client_for(superuser).post("/api/v1/plants/", data=[1, 2], format="json"), 400)
    assert_json_detail(response)


def test_answers_415_json_when_body_is_form_encoded(client_for, superuser):
    response = client_for(superuser).post(
        "/api/v1/plants/", data="name=Werk&time_zone=UTC", content_type="application/x-www-form-urlencoded"
    )
    assert_status(response, 415)
    assert "application/x-www-form-urlencoded" in assert_json_detail(response)


def test_answers_405_json_when_method_is_not_allowed(client_for, superuser):
    response = assert_status(client_for(superuser).delete("/api/v1/users/me/"), 405)
    assert "DELETE" in assert_json_detail(response)


def test_answers_401_json_when_api_is_called_anonymously(db):
    response = assert_status(APIClient().get("/api/v1/plants/"), 401)
    assert_json_detail(response)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_answers_403_json_when_session_post_lacks_csrf_token(superuser):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(superuser)
    response = assert_status(client.post("/api/v1/plants/", {"name": "Werk", "time_zone": "UTC"}, format="json"), 403)
    assert "CSRF" in assert_json_detail(response)
    assert not Plant.objects.filter(name="Werk").exists()


def test_answers_json_error_when_api_request_fails_unexpectedly():
    # handler500 for API paths (Django calls it with DEBUG off when a view raises).
    response = server_error(RequestFactory().get("/api/v1/plants/"))
    assert response.status_code == 500
    assert "try again later" in assert_json_detail(response)


def test_answers_html_error_when_site_request_fails_unexpectedly():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_answers_json_404_from_the_handler_when_path_is_under_api():
    response = not_found(RequestFactory().get("/api/v2/anything"))
    assert response.status_code == 404
    assert "/api/v2/anything" in assert_json_detail(response)


def test_answers_404_json_when_api_path_is_unknown_in_debug_mode(db, settings):
    settings.DEBUG = True  # Django's technical 404 page would be HTML
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "/api/docs/" in response.json()["detail"]


def test_answers_409_when_a_unique_constraint_loses_a_race():
    from django.db import IntegrityError

    from factory.exceptions import api_exception_handler

    response = api_exception_handler(IntegrityError("Duplicate entry"), {})
    assert response.status_code == 409
    assert "retry" in response.data["detail"]
