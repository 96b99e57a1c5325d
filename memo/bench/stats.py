"""Summaries of repeated measurements: medians and quartiles."""

from __future__ import annotations

import statistics


def median(values: list[float]) -> float:
    """The median; NaN for no values."""
    return float(statistics.median(values)) if values else float("nan")


def quartiles(values: list[float]) -> list[float]:
    """The first and third quartiles (a single value twice; none for no values)."""
    if len(values) < 2:
        return [values[0], values[0]] if values else []
    quarters = statistics.quantiles(values, n=4)
    return [quarters[0], quarters[2]]
