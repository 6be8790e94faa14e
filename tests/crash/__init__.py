"""Crash and concurrency harness: kill a loading pipeline (SIGKILL) at named points or at random
moments, recover it, and compare the destination value by value with what was sent.

Modules: ``data`` (deterministic batches and what a destination must hold after them),
``targets`` (each destination read back with its own driver), ``worker`` (one ``run()`` in a
subprocess), ``harness`` (kill, recover, verify), ``concurrent`` (two pipelines at once),
``report`` (the summary table). ``make crash`` runs it at full strength.
"""
