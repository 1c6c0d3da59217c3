"""Reads of products, orders and runs, scoped to a user's plants (404 for the invisible)."""

from django.db.models import QuerySet

from accounts.roles import PERM_VIEW
from accounts.selectors import scope_to_plants
from production.models import Order, Product, Run


def product_list_for(user) -> QuerySet[Product]:
    """Products of the plants ``user`` sees, with their cycle times."""
    return scope_to_plants(Product.objects.select_related("plant").prefetch_related("cycle_times"), user, PERM_VIEW)


def order_list_for(user) -> QuerySet[Order]:
    """Orders of the plants ``user`` sees, with product, line and machines."""
    queryset = Order.objects.select_related("plant", "product", "line").prefetch_related("machines")
    return scope_to_plants(queryset, user, PERM_VIEW)


def run_list_for(user) -> QuerySet[Run]:
    """Runs on the machines of the plants ``user`` sees, newest first."""
    queryset = Run.objects.select_related("device__plant", "product", "order").order_by("-start", "-id")
    return scope_to_plants(queryset, user, PERM_VIEW, "device__plant")


def run_current(device_id: int) -> Run | None:
    """The machine's open run, or None (one query)."""
    return Run.objects.filter(device_id=device_id, end__isnull=True).select_related("product", "order").first()
