from django.urls import path

from analytics.views import oee_page

urlpatterns = [path("oee/", oee_page, name="oee")]
