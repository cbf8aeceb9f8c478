"""Exceptions that carry a one-line message for the user (translated at the CLI/page edge)."""


class EtlError(Exception):
    """A failure the user can act on: unreadable source, bad config, bad argument."""


class SourceError(EtlError):
    """A declared source cannot be read at all; the run fails and the warehouse stays as it was."""


class ConfigError(EtlError):
    """A configuration file (sources.yaml, rules, scheme) is invalid."""
