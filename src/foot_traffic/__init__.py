"""foot-traffic: simulate store customer arrivals and stream them to Apache Kafka."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("foot-traffic")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
