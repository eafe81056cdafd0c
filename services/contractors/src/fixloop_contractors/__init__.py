"""Fixloop contractors service: contractor registry, credentials, dispatch decisions and offers."""
