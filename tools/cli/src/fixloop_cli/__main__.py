"""``python -m fixloop_cli`` is the ``fixloop`` command."""

from fixloop_cli.main import main

main()
