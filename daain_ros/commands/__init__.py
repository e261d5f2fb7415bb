"""Sub-commands of ``daain``: each module has ``register(subparsers)`` that sets ``run``."""
