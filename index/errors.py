"""The one error type of the index package, carrying a message meant for the user."""


class VectorIndexError(ValueError):
    """A bad call or an unreadable index folder; the message says what is wrong and what to do."""
