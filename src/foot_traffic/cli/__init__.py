"""The command line: the only composition root."""
