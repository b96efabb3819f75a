"""Operations: logging setup (and, later, metrics and health)."""
