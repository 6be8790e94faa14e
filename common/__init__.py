"""Contracts shared by every step and destination. No database driver is imported here."""
