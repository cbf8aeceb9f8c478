"""Exceptions that carry a one-line message for the user (translated at the CLI/page edge)."""


class EtlError(Exception):
    """A failure the user can act on: unreadable source, bad config, bad argument."""


class SourceError(EtlError):
    """A declared source cannot be read at all; the run fails and the warehouse stays as it was."""


class ConfigError(EtlError):
    """A configuration file (sources.yaml, rules, scheme) is invalid."""


class SupervisionError(EtlError):
    """A supervision write refused (empty reason, unknown key, out of scope, role, stale view, ...): nothing written."""


class StaleWriteError(SupervisionError):
    """Someone changed the record since it was shown: the write is refused, never silently overwritten."""


class AuditError(EtlError):
    """The audit row of an action could not be written (database busy, schema not upgraded): the action is refused."""
