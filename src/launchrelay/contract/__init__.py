"""The wire contract: message models, areas, the canonical encoding and the schema."""

from launchrelay.contract.areas import Area, CircleArea, OceanQuadrantArea, Point, PolygonArea, WaterBodyArea
from launchrelay.contract.codec import canonical_json, decode, encode, json_schema
from launchrelay.contract.messages import (
    Acknowledgement,
    Amendment,
    Cancellation,
    CompletedLaunch,
    LaunchWindow,
    Message,
    MessageType,
    PartyMessage,
    PlannedLaunch,
    Reason,
    Receipt,
    ReceiptOutcome,
    RecordRef,
    Vehicle,
    VehicleCategory,
)

__all__ = [
    "Acknowledgement",
    "Amendment",
    "Area",
    "Cancellation",
    "CircleArea",
    "CompletedLaunch",
    "LaunchWindow",
    "Message",
    "MessageType",
    "OceanQuadrantArea",
    "PartyMessage",
    "PlannedLaunch",
    "Point",
    "PolygonArea",
    "Reason",
    "Receipt",
    "ReceiptOutcome",
    "RecordRef",
    "Vehicle",
    "VehicleCategory",
    "WaterBodyArea",
    "canonical_json",
    "decode",
    "encode",
    "json_schema",
]
