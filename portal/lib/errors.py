"""Errors the business rules raise; handlers turn them into pages."""


class NotFound(LookupError):
    pass


class RuleBroken(ValueError):
    """A business rule refused the action; the message is for the person who asked.

    `field` names the input the rule is about (a parameter of the refusing function), so a form
    can show the message beside it without reading the message; None when no one input is to blame.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field
