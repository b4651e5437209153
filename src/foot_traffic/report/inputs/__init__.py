"""Events read back for ``foot-traffic report``: from a JSON-lines file or a Kafka topic, into numpy columns."""
