"""Load packages on disk and the writers that fill them."""
