"""Configuration: the :class:`Settings` read from ``CLEVERAGENTS_*`` variables."""

from cleveragents.config.settings import DEFAULT_DATABASE_URL, Settings

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]
