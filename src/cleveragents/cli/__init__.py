"""The ``cleveragents-audit`` command line."""
