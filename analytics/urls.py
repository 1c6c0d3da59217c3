"""The analytics pages (session login), included at the site root by ``factory/urls.py``."""

from django.urls import path

from analytics.views import oee_page

urlpatterns = [path("analytics/oee/", oee_page, name="oee")]
