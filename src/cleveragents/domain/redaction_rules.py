"""The default redaction rules: the sensitive key names and the built-in value patterns.

:mod:`cleveragents.domain.redaction` applies them (and the settings name them as their
defaults). Each built-in pattern comes with its literal markers, one of which occurs in
every string it matches: a payload whose strings hold none of them is not searched.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BUILTIN_PATTERNS", "DEFAULT_REDACT_KEYS", "DEFAULT_REDACT_PATTERNS"]

#: The sensitive key names of the default settings.
DEFAULT_REDACT_KEYS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credential",
)

#: The built-in value patterns, each with the literal markers one of which occurs in
#: every string it matches: a string that contains none of them is not searched.
BUILTIN_PATTERNS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    # An HTTP Authorization value: "Bearer <token>", "Basic <base64>".
    (
        r"(?<![A-Za-z0-9])(?:Bearer|bearer|BEARER)\s+[A-Za-z0-9\-._~+/]{8,}=*",
        ("earer", "EARER"),
    ),
    (r"(?<![A-Za-z0-9])(?:Basic|basic|BASIC)\s+[A-Za-z0-9+/]{8,}=*", ("asic", "ASIC")),
    # A JSON Web Token: base64url header and payload (both JSON objects), signature.
    (r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", ("eyJ",)),
    # OpenAI and Anthropic keys (sk-..., sk-proj-..., sk-ant-...).
    (r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}", ("sk-",)),
    # GitHub tokens: classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained.
    (r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,}", ("gh",)),
    (r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}", ("github_pat_",)),
    # AWS access key ids.
    (r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])", ("AKIA", "ASIA")),
    # Slack tokens.
    (r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}", ("xox",)),
    # Google API keys.
    (r"AIza[0-9A-Za-z_-]{35}", ("AIza",)),
    # Stripe secret and restricted keys.
    (r"(?<![A-Za-z0-9])[rs]k_(?:live|test)_[0-9A-Za-z]{16,}", ("k_live_", "k_test_")),
    # A PEM private key block, or what is left of one that was cut short.
    (
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)",
        ("PRIVATE KEY",),
    ),
    # The user:password part of a URL (postgresql://user:pw@host/db).
    (r"(?<=://)[^/\s:@]+:[^/\s@]*(?=@)", ("://",)),
    # A secret passed as a query or connection-string parameter (?api_key=..., password=...).
    (
        r"(?i:(?<![a-z0-9])(?:password|passwd|pwd|secret|token|access_token|api_?key)=)"
        r"[^&\s;\"']+",
        ("=",),
    ),
)

#: The value patterns of the default settings.
DEFAULT_REDACT_PATTERNS: Final = tuple(pattern for pattern, _ in BUILTIN_PATTERNS)
