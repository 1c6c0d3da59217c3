"""Products, orders and runs for tests, built through the services as the API and admin build them."""

from decimal import Decimal
from itertools import count

from production.models import Order, Product, Source
from production.services.catalog import order_save, product_save

_seq = count(1)


def make_product(plant, code: str | None = None, *, machines=(), lines=(), units_per_cycle: int = 1, **fields):
    """A product with cycle times: ``machines``/``lines`` are ``(device or line, seconds)`` pairs."""
    product = Product(plant=plant, code=code or f"P-{next(_seq)}", units_per_cycle=units_per_cycle, **fields)
    rows = [{"device": d, "seconds": Decimal(str(s))} for d, s in machines]
    rows += [{"line": line, "seconds": Decimal(str(s))} for line, s in lines]
    return product_save(product=product, cycle_times_rows=rows)


def make_order(plant, product, number: str | None = None, *, quantity: int = 100, machines=None, **fields) -> Order:
    order = Order(plant=plant, number=number or f"PO-{next(_seq)}", product=product, quantity=quantity, **fields)
    order.source = fields.pop("source", Source.ADMIN)
    return order_save(order=order, machines=machines)
