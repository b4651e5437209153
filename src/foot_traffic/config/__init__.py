"""Configuration: settings, their files, the configuration file and the effective view."""
