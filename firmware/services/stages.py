"""Splitting a rollout's devices into stages."""

import math

from django.core.exceptions import ValidationError


def parse_stages(spec: list) -> list[tuple[str, int]]:
    """Validate a stage spec: each item a positive int (a batch of that many devices) or "N%"
    (cumulative share of all targets, 1-100, increasing). Returns ``[("count"|"percent", n), ...]``."""
    if not isinstance(spec, list) or not spec:
        raise ValidationError({"stages": 'Give at least one stage, e.g. [1, "25%", "100%"].'})
    parsed, last_percent = [], 0
    for index, item in enumerate(spec):
        if isinstance(item, int) and not isinstance(item, bool) and item > 0:
            parsed.append(("count", item))
            continue
        if isinstance(item, str) and item.endswith("%") and item[:-1].isdigit():
            percent = int(item[:-1])
            if 0 < percent <= 100 and percent > last_percent:
                parsed.append(("percent", percent))
                last_percent = percent
                continue
        raise ValidationError(
            {"stages": f"Stage {index + 1} ({item!r}): use a device count or an increasing share 'N%' (1-100)."}
        )
    return parsed


def stage_sizes(spec: list, total: int) -> list[int]:
    """Devices per stage for ``total`` targets; the last stage takes whatever remains. A stage may be
    empty (few devices); the rollout then passes through it at once."""
    sizes, placed = [], 0
    for kind, value in parse_stages(spec):
        upto = placed + value if kind == "count" else math.ceil(total * value / 100)
        upto = min(max(upto, placed), total)
        sizes.append(upto - placed)
        placed = upto
    if placed < total:
        sizes[-1] += total - placed
    return sizes
