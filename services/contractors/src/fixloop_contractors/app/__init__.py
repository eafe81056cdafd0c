"""Use cases of the contractors service: import the registry, dispatch received work orders."""
