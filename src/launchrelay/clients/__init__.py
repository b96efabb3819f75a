"""SDKs: the publisher for planning systems, the inbox for counterpart systems."""

from launchrelay.clients.publisher import Publisher, PublishResult

__all__ = ["PublishResult", "Publisher"]
