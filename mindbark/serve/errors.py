"""Errors a client sees: an HTTP status and an OpenAI-style JSON body naming the field at fault."""


class ApiError(Exception):
    """A request the service answers with `status` and `{"error": {"message", "type", "param", "code"}}`.

    Args:
        status: the HTTP status.
        message: one line for the client.
        param: the request field at fault, if one is.
        type: OpenAI's error type (`invalid_request_error`, `authentication_error`, ...).
        headers: extra response headers (`Retry-After`, `WWW-Authenticate`).
    """

    def __init__(self, status: int, message: str, param: str | None = None, type: str = "invalid_request_error",
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.type = status, message, param, type
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.status}}


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, type="authentication_error", headers={"WWW-Authenticate": "Bearer"})


def not_ready(message: str) -> ApiError:
    return ApiError(503, message, type="service_unavailable")
