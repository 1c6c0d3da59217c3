"""The devices' pages (session login), included at the site root by ``factory/urls.py``."""

from django.urls import path

from devices import views

urlpatterns = [
    path("plants/<int:plant_id>/", views.plant_overview, name="plant_overview"),
    path("devices/<int:device_id>/", views.device_detail, name="device_detail"),
    path("plants/<int:plant_id>/approvals/", views.provisioning_approvals, name="provisioning_approvals"),
    path(
        "plants/<int:plant_id>/approvals/<int:request_id>/approve/",
        views.provisioning_decide,
        {"approve": True},
        name="provisioning_approve",
    ),
    path(
        "plants/<int:plant_id>/approvals/<int:request_id>/reject/",
        views.provisioning_decide,
        {"approve": False},
        name="provisioning_reject",
    ),
]
