"""Authentication and accounts."""
