"""The HTTP API: a thin shell over the same services the CLI calls."""
