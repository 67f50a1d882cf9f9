"""runner: declarative YAML specs for LLM chat-completion requests."""

__version__ = "0.1.0"
