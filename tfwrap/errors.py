"""The one exception type that turns into a one-line refusal and an exit code."""

from __future__ import annotations

from tfwrap import exitcodes


class TfwrapError(Exception):
    """A refusal: ``message`` names the problem and the fix; ``code`` is from ``exitcodes``."""

    def __init__(self, message: str, code: int = exitcodes.INTERNAL) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PolicyError(TfwrapError):
    """TFWRAP_MODE or .tfwrap.toml is invalid."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exitcodes.POLICY)


class BackendConfigError(TfwrapError):
    """The backend configuration cannot be read."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exitcodes.BACKEND_CONFIG)
