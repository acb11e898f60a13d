"""Errors a user can act on: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input, data or settings, with what to do about it."""

    exit_code = 2


class Blocked(UserError):
    """A blocking finding of the checks held the analytics stages back; the message lists one finding a line."""

    exit_code = 1
