"""The firmware pages (session login), included at the site root by ``factory/urls.py``."""

from django.urls import path

from firmware import views

urlpatterns = [path("plants/<int:plant_id>/rollouts/", views.rollout_board, name="rollout_board")]
