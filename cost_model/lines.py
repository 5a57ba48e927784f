"""Cost lines: the one shape every priced quantity takes (the before's, the after's, a measured run's), and
the one place that builds them from the price book.

A line is {service, unit, quantity, unit_price_usd, monthly_usd, source}; `monthly_usd` is quantity x unit
price (for a measured run, the run's cost). Its source is the price's source and date, plus what the
quantity assumes.
"""

from __future__ import annotations

from typing import Any

from cost_model.prices import PriceBook

Line = dict[str, Any]


def line(service: str, unit: str, quantity: float, unit_price: float, source: str) -> Line:
    """A line at an explicit unit price (a purchase option's rate, a free-tier credit)."""
    return {
        "service": service,
        "unit": unit,
        "quantity": quantity,
        "unit_price_usd": unit_price,
        "monthly_usd": quantity * unit_price,
        "source": source,
    }


def priced_line(
    book: PriceBook, key: str, service: str, unit: str, quantity: float, *, note: str = ""
) -> Line:
    """A line of `quantity` at the book's price `key`, its source and date (and `note`, what it assumes)."""
    price = book[key]
    source = f"{price.source} [{price.date}]" + (f"; {note}" if note else "")
    return line(service, unit, quantity, price.usd, source)


def tiered(book: PriceBook, family: str, service: str, unit: str, quantity: float) -> list[Line]:
    """One line per volume tier of `family` the quantity reaches (a single line when it stays in the
    first)."""
    parts = []
    for i, tier in enumerate(book.tiers(family), 1):
        top = quantity if tier.end is None else min(quantity, tier.end)
        if top > tier.start or i == 1:
            parts.append((i, max(top - tier.start, 0.0), tier.price))
    single = len(parts) == 1
    return [
        line(
            service,
            unit if single else f"{unit}, tier {i}",
            amount,
            price.usd,
            f"{price.source} [{price.date}]",
        )
        for i, amount, price in parts
    ]


def total(lines: list[Line]) -> float:
    return sum(x["monthly_usd"] for x in lines)
