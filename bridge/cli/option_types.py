"""Types for the CLI's option values: each parses the text argparse was given, and a value out of
range is the option's own one-line error (argparse names the option)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["positive_seconds", "whole_number"]


def positive_seconds(text: str) -> float:
    """A number of seconds greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def whole_number(low: int, high: int | None = None, *, out_of_range: str) -> Callable[[str], int]:
    """A type for a whole number from ``low`` (to ``high``); out of range, the error is
    ``out_of_range`` and the value given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{out_of_range}, got {value}")
        return value

    return parse
