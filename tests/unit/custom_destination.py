"""A tiny third-party-style destination (a copy of the no-op one) for the registry tests.

Not a test module: it is imported by dotted path ("tests.unit.custom_destination:MyDest") and
through a fake entry point.
"""

from __future__ import annotations

from loadbay.common.destination import Destination, DestinationConfig
from loadbay.destinations.noop.capabilities import capabilities as noop_capabilities
from loadbay.destinations.noop.configuration import NoopConfig
from loadbay.destinations.noop.job_client import NoopJobClient


class MyDest(Destination):
    destination_type = "mydest"
    spec = NoopConfig
    capabilities = noop_capabilities

    def client(self, config: DestinationConfig) -> NoopJobClient:
        return NoopJobClient(config, self.capabilities)


def not_a_destination() -> None:
    """Importable, but not a Destination class."""


class NotADestinationClass:
    """A class, but not a Destination subclass."""
