"""The one exception type users see: a single line naming the problem and the fix."""


class RomenasError(Exception):
    """A problem with the user's input or environment (the CLI prints it and exits with 2)."""
