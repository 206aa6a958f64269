"""The command line's one error for the user."""


class UserError(Exception):
    """A mistake the user can fix: printed on one line without a traceback, exit status 2.

    The message's first line says what is wrong; further lines may list details.
    """
