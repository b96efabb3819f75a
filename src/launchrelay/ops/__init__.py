"""Operators' tools beside the services: reading and redriving dead letters."""
