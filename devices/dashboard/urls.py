"""Dashboard pages (session login), included at the site root by ``factory/urls.py``."""

from django.urls import path

from devices.dashboard import views

urlpatterns = [
    path("plants/<int:plant_id>/", views.plant_overview, name="plant_overview"),
    path("plants/<int:plant_id>/alarms/", views.alarm_console, name="alarm_console"),
    path("plants/<int:plant_id>/rollouts/", views.rollout_board, name="rollout_board"),
    path("devices/<int:device_id>/", views.device_detail, name="device_detail"),
]
