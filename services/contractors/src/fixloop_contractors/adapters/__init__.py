"""Adapters of the contractors service: the contractor file, MongoDB, and the Kafka consumer."""
