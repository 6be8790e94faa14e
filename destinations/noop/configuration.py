"""The no-op destination needs no credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from loadbay.common.configuration import Credentials
from loadbay.common.destination import DestinationConfig


@dataclass(repr=False)
class NoopCredentials(Credentials):
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    def location(self) -> str:
        return "nowhere"


@dataclass
class NoopConfig(DestinationConfig):
    credentials: NoopCredentials = field(default_factory=NoopCredentials)
