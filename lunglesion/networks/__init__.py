"""Network definitions (architecture only; training and inference live elsewhere)."""
