"""Agreements as configuration: the config model, shipped presets, pure rules and geometry."""

from launchrelay.agreements.config import Agreement, Deployment, Party, load_config, load_presets
from launchrelay.agreements.rules import check

__all__ = ["Agreement", "Deployment", "Party", "check", "load_config", "load_presets"]
