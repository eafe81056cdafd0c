"""The ``fixloop`` command line (``fixloop_cli.main``); ``python -m fixloop_cli`` runs it too."""
