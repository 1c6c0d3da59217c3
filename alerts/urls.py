"""The alerts' pages (session login), included at the site root by ``factory/urls.py``."""

from django.urls import path

from alerts import views

urlpatterns = [
    path("plants/<int:plant_id>/alarms/", views.alarm_console, name="alarm_console"),
    # Not "alarm-kpis": the API's kpis action (/api/v1/alarms/kpis/) has that name, and reverse()
    # always found the API.
    path("alarms/kpis/", views.kpi_page, name="alarm_kpis"),
]
