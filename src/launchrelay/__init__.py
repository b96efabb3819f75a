"""launchrelay: a Kafka relay for launch notifications between governments."""

from launchrelay.errors import ConfigError, LaunchRelayError

__all__ = ["ConfigError", "LaunchRelayError", "__version__"]

__version__ = "0.1.0"
