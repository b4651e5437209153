"""The Kafka adapter: every confluent_kafka import lives here."""
