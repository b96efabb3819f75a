"""SDKs: the publisher for planning systems, the inbox for counterpart systems."""

from launchrelay.clients.inbox import Inbox, InboxItem
from launchrelay.clients.publisher import Publisher, PublishResult

__all__ = ["Inbox", "InboxItem", "PublishResult", "Publisher"]
