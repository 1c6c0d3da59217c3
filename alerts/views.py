"""The alarm KPI page: figures and charts drawn in the browser from ``GET /api/v1/alarms/kpis/``."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.selectors import plant_list_for


@login_required
def kpi_page(request):
    """ISA-18.2 / EEMUA 191 alarm KPIs of one of your plants over a chosen period."""
    plants = list(plant_list_for(request.user).values("pk", "name"))
    return render(request, "alerts/kpis.html", {"plants": plants})
