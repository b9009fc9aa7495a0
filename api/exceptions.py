"""Errors of the API's own services (clients and keys). Every message names the field and value."""

BAD_CLIENT_NAME = (
    "client={value!r} is not a valid client name (lower case letters, digits, '_', '.', '-';"
    " starting with a letter; at most 40 characters; not one of {reserved})"
)
UNKNOWN_SCOPE = "scopes={value!r}: {scope!r} is not a scope (expected some of {choices})"


class ApiError(Exception):
    """Base class of the API app's service errors."""


class BadClientName(ApiError, ValueError):
    def __init__(self, value, *, reserved):
        super().__init__(BAD_CLIENT_NAME.format(value=value, reserved=", ".join(reserved)))
        self.field, self.value = "client", value


class UnknownScope(ApiError, ValueError):
    def __init__(self, value, *, scope, choices):
        super().__init__(UNKNOWN_SCOPE.format(value=value, scope=scope, choices=", ".join(choices)))
        self.field, self.value = "scopes", value
