"""Infrastructure: the write-behind writer thread and the persistence it writes through."""
