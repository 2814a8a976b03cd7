"""asv benchmarks of cleveragents-audit; see benchmarks/README.md for what each one measures."""
