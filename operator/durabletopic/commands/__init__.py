"""Subcommands of `durabletopic`: each module has `register(subparsers)`, which sets `handler`."""
