"""The no-op destination runs no SQL; its classify recognizes no driver errors."""

from __future__ import annotations

from loadbay.common.exceptions import DestinationError


def classify(exc: BaseException) -> type[DestinationError] | None:
    """No driver, so nothing to classify."""
    return None
