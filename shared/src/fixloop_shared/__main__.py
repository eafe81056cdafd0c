"""``python -m fixloop_shared`` is the ``fixloop`` command."""

from fixloop_shared.cli import main

main()
