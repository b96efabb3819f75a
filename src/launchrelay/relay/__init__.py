"""The relay: decide each record's fate (pure), and carry it out exactly once (service)."""
