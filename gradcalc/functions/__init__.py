"""Activations and losses, each a record in one registry table."""
