"""The conformance suite: every destination must pass these tests (or skip them by capability, with a reason).

Run by ``loadbay.destinations.testing.plugin``; see that module and docs/writing-a-destination.md.
"""
