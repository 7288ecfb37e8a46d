"""The model client: the only user of the anthropic and openai SDKs."""

from paddock.llm.client import (
    DEFAULT_MODEL,
    AnthropicProvider,
    ModelProvider,
    ModelReply,
    ModelTarget,
    TextBlock,
    ToolSpec,
    ToolUse,
    Usage,
)
from paddock.llm.errors import LLMError, MissingKey
from paddock.llm.openai_chat import OpenAIProvider


def provider_for(target: ModelTarget, api_key: str | None, *, max_retries: int = 4) -> ModelProvider:
    """The provider for an endpoint the session layer resolved (policy checked, key looked up)."""
    if target.kind == "openai":
        return OpenAIProvider(
            api_key,
            model=target.model,
            base_url=target.base_url,
            endpoint=target.endpoint,
            needs_key=target.needs_key,
            max_retries=max_retries,
        )
    from paddock.llm.client import NO_KEY

    key = api_key if target.needs_key else (api_key or NO_KEY)
    return AnthropicProvider(
        key, model=target.model, base_url=target.base_url, endpoint=target.endpoint, max_retries=max_retries
    )


__all__ = [
    "DEFAULT_MODEL",
    "AnthropicProvider",
    "LLMError",
    "MissingKey",
    "ModelProvider",
    "ModelReply",
    "ModelTarget",
    "OpenAIProvider",
    "TextBlock",
    "ToolSpec",
    "ToolUse",
    "Usage",
    "provider_for",
]
