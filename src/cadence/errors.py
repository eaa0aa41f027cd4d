"""Errors Cadence raises for bad input, each with a message meant for a person."""


class CadenceError(Exception):
    """Base of every error Cadence raises on purpose."""


class ConfigError(CadenceError):
    """A config file is wrong; the message names file, line, key path and the fix."""


class InputError(CadenceError):
    """An input file or argument given on the command line cannot be used."""
