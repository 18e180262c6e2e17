"""``python -m iii_asgi`` is the ``iii-asgi`` command."""

from .cli import main

main(prog_name="iii-asgi")
