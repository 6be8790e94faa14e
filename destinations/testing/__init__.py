"""The destination conformance suite, importable by third parties.

One command checks a destination, wherever it lives::

    pytest --pyargs loadbay.destinations.testing -p loadbay.destinations.testing.plugin \\
        --lb-destination mypkg.presto:presto \\
        --lb-credentials postgresql://postgres@127.0.0.1:5432/test

``plugin`` holds the options and fixtures, ``setups`` the built-in destination setups (``SETUPS``),
``real_errors`` what a table of real errors is (``--lb-errors``) and ``error_tables`` the built-in
destinations' tables, ``conformance`` the tests and their helpers. See docs/writing-a-destination.md.
"""
