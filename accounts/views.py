from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render
from django.utils import timezone

from accounts.selectors import plant_list_for, plant_roles_of


@login_required
def home(request):
    """The landing page: the plants you hold a role on, with their lines and device counts."""
    plants = plant_list_for(request.user).annotate(
        line_count=Count("lines", distinct=True), device_count=Count("devices", distinct=True)
    )
    roles = plant_roles_of(request.user)
    rows = [(plant, roles.get(plant.pk, "superuser" if request.user.is_superuser else None)) for plant in plants]
    return render(request, "home.html", {"rows": rows, "now": timezone.now()})
