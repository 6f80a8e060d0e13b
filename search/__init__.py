"""Query understanding and ranking."""
