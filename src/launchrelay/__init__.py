"""launchrelay: a Kafka relay for launch notifications between governments.

What integrators use is exported here: the publisher SDK for planning systems,
the inbox SDK for counterpart systems, signing keys, the message models and
the errors. Everything else (the services, the broker tooling, the CLI) is
the relay's own machinery and may change without notice.
"""

from launchrelay.clients import Inbox, InboxItem, Publisher, PublishResult
from launchrelay.contract import (
    Acknowledgement,
    Amendment,
    Cancellation,
    CompletedLaunch,
    LaunchWindow,
    Message,
    PartyMessage,
    PlannedLaunch,
    Reason,
    Receipt,
    ReceiptOutcome,
    Vehicle,
    VehicleCategory,
    decode,
    encode,
)
from launchrelay.errors import (
    ConfigError,
    ContractError,
    KafkaRequestFailed,
    LaunchRelayError,
    PublishError,
    PublishRefused,
    ReceiptTimeout,
    SignatureError,
)
from launchrelay.signing import Signer

__all__ = [
    "Acknowledgement",
    "Amendment",
    "Cancellation",
    "CompletedLaunch",
    "ConfigError",
    "ContractError",
    "Inbox",
    "InboxItem",
    "KafkaRequestFailed",
    "LaunchRelayError",
    "LaunchWindow",
    "Message",
    "PartyMessage",
    "PlannedLaunch",
    "PublishError",
    "PublishRefused",
    "PublishResult",
    "Publisher",
    "Reason",
    "Receipt",
    "ReceiptOutcome",
    "ReceiptTimeout",
    "SignatureError",
    "Signer",
    "Vehicle",
    "VehicleCategory",
    "__version__",
    "decode",
    "encode",
]

__version__ = "0.2.0"
