"""Sub-commands of ``python -m core``, discovered automatically.

Each module here may define

- ``register(subparsers)``: add top-level sub-commands (``python -m core NAME ...``);
- ``register_demo(demo_subparsers)``: add ``python -m core demo NAME ...`` sub-commands.

Each sub-parser sets ``func=<callable(args) -> int>`` with ``set_defaults``.
"""
