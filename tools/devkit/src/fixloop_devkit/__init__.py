"""Fixloop dev tooling: the embedded stack (``make run``), its servers, and test helpers.

Never installed into a service image: the services' packages must not import it (an
import-linter contract and ``tests/unit/test_deploy_manifests.py`` check that).
"""
