"""The model client: the only user of the anthropic SDK."""

from paddock.llm.client import (
    DEFAULT_MODEL,
    AnthropicProvider,
    LLMError,
    MissingKey,
    ModelProvider,
    ModelReply,
    TextBlock,
    ToolSpec,
    ToolUse,
    Usage,
)

__all__ = [
    "DEFAULT_MODEL",
    "AnthropicProvider",
    "LLMError",
    "MissingKey",
    "ModelProvider",
    "ModelReply",
    "TextBlock",
    "ToolSpec",
    "ToolUse",
    "Usage",
]
