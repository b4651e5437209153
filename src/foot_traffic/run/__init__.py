"""The run loop: clocks, the sink protocol, the service loop, progress and stop signals."""
