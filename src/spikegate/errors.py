"""Errors the CLI reports as one clear line (no traceback) with a non-zero exit status."""


class UserError(Exception):
    """A problem with the user's input or environment, explained in the message."""
