"""``python -m fixloop_contractors`` runs the service (what the embedded stack starts)."""

from fixloop_contractors.main import main

main()
