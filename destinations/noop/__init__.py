"""The no-op destination, for benchmarking extract and normalize without a database."""

from __future__ import annotations

from loadbay.common.destination import Destination, DestinationConfig
from loadbay.destinations.noop.capabilities import capabilities as noop_capabilities
from loadbay.destinations.noop.configuration import NoopConfig
from loadbay.destinations.noop.job_client import NoopJobClient


class noop(Destination):  # noqa: N801
    destination_type = "noop"
    spec = NoopConfig
    capabilities = noop_capabilities

    def client(self, config: DestinationConfig) -> NoopJobClient:
        return NoopJobClient(config, self.capabilities)


__all__ = ["noop"]
