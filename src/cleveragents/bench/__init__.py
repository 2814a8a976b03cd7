"""The side-by-side benchmark behind ``cleveragents-audit bench``.

Each contender runs in a fresh subprocess (:mod:`cleveragents.bench.worker`) on a
fresh database of the same kind, so that peak memory is its own and no contender
warms the cache for the next.
"""
