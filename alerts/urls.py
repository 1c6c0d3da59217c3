from django.urls import path

from alerts.views import kpi_page

urlpatterns = [path("kpis/", kpi_page, name="alarm-kpis")]
