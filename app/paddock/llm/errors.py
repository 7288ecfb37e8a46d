"""What a model SDK's error means, in plain words: one mapping for both providers.

The ``anthropic`` and ``openai`` SDKs are generated from the same template and raise the same
family of exceptions (``AuthenticationError``, ``RateLimitError``, ``APIConnectionError``, …), so
the SDK module is passed in and the classes are looked up on it by name; neither SDK is imported
here (each provider loads its own only when it is made).
"""

from __future__ import annotations

from types import ModuleType

from paddock.core.errors import PaddockError


class LLMError(PaddockError):
    """The model could not be reached or refused the request."""


class MissingKey(LLMError):
    """No model key is configured."""


def keys_hint(endpoint: str) -> str:
    flag = "" if endpoint == "anthropic" else f" --endpoint {endpoint}"
    return f"Replace it with `paddock keys set{flag}`."


def plain_error(sdk: ModuleType, exc: Exception, *, endpoint: str, base_url: object, model: str) -> LLMError:
    """The ``LLMError`` the person sees for ``exc``, raised by ``sdk`` talking to ``endpoint``."""
    where = f"the model service {endpoint!r} ({base_url})"
    if isinstance(exc, sdk.AuthenticationError):
        return LLMError(f"{where.capitalize()} did not accept the key.", hint=keys_hint(endpoint))
    if isinstance(exc, sdk.PermissionDeniedError):
        return LLMError(f"{where.capitalize()} refused this request for this key.")
    if isinstance(exc, sdk.NotFoundError):
        return LLMError(
            f"{where.capitalize()} does not offer the model {model!r} (or has no such API there).",
            hint="Check the model's name and the endpoint's base URL.",
        )
    if isinstance(exc, sdk.RateLimitError):
        return LLMError(f"{where.capitalize()} is busy and asked us to slow down; try again shortly.")
    if isinstance(exc, sdk.APIConnectionError):  # timeouts are a kind of connection error
        return LLMError(
            f"Could not reach {where}.", hint="Check the network connection, or that the server is running."
        )
    if isinstance(exc, sdk.APIStatusError):
        return LLMError(f"{where.capitalize()} answered with an error ({exc.status_code}): {exc.message}")
    message = getattr(exc, "message", None) or str(exc)  # e.g. an error event in the middle of a stream
    return LLMError(f"{where.capitalize()} failed: {message}")
