"""Click types for numbers that must be finite and in range, checked while parsing.

Python's float() takes "nan", "inf" and "1e308"; a deadline or a pacing factor
of any of them makes no sense and breaks arithmetic far from the flag that
caused it. Refusing them at parse time makes them ordinary usage errors
(exit 2) that name the option. Only Click is imported: `cli` must stay light.
"""

from __future__ import annotations

import math
from typing import Any

import click


class BoundedFloat(click.ParamType[float]):
    """A finite float in [low, high] (or (low, high] when `open_low`)."""

    name = "float"

    def __init__(self, low: float, high: float, *, open_low: bool = False) -> None:
        self.low = low
        self.high = high
        self.open_low = open_low

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{str(value)[:40]!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        too_low = number <= self.low if self.open_low else number < self.low
        if too_low or number > self.high:
            self.fail(f"{number:g} is not in {self._describe()}", param, ctx)
        return number

    def _describe(self) -> str:
        left = "(" if self.open_low else "["
        return f"the range {left}{self.low:g}, {self.high:g}]"

    def __repr__(self) -> str:
        return f"BoundedFloat({self.low}, {self.high})"
