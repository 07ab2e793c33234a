"""Errors the business rules raise; handlers turn them into pages."""


class NotFound(LookupError):
    pass


class RuleBroken(ValueError):
    """A business rule refused the action; the message is for the person who asked."""
