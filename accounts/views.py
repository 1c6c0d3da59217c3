from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.selectors import plant_list_for, plant_roles_of


@login_required
def home(request):
    """The landing page: the plant overview when you have one plant, else your plants with counts."""
    visible = plant_list_for(request.user)
    if len(only := visible.values_list("pk", flat=True)[:2]) == 1:
        return redirect("plant_overview", plant_id=only[0])
    plants = visible.annotate(line_count=Count("lines", distinct=True), device_count=Count("devices", distinct=True))
    roles = plant_roles_of(request.user)
    rows = [(plant, roles.get(plant.pk, "superuser" if request.user.is_superuser else None)) for plant in plants]
    return render(request, "home.html", {"rows": rows, "now": timezone.now()})
