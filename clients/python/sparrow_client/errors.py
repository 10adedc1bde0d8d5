"""Errors: a server's refusal carries its status code; transport failures have their own types."""


class SparrowError(Exception):
    """A call failed. `code` is the server's status code name (e.g. "INVALID_ARGUMENT",
    "UNAUTHENTICATED", "RESOURCE_EXHAUSTED"), or the client's own for transport failures
    ("DEADLINE_EXCEEDED", "UNAVAILABLE"); `message` says what was wrong."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SparrowTimeout(SparrowError, TimeoutError):
    """No answer within the call's timeout."""

    def __init__(self, message: str):
        super().__init__("DEADLINE_EXCEEDED", message)


class SparrowConnectionError(SparrowError, ConnectionError):
    """The coordinator could not be reached, the TLS handshake failed, or the connection broke."""

    def __init__(self, message: str):
        super().__init__("UNAVAILABLE", message)
