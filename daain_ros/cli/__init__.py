"""The ``daain`` command line: ``main`` and one thin module per sub-command (argument parsing only)."""
