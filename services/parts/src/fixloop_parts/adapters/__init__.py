"""Adapters of the parts service: MongoDB repositories, the Kafka handler, the stock file reader."""
