"""The ``piddm`` command line (no Qt). Each sub-command lives in a module with ``register()``."""
