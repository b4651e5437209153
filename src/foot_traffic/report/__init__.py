"""foot-traffic report: events read back and checked against the model."""
