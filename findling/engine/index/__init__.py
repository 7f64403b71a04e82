"""Indexing: the Indexer that drives extract -> encode -> store, read-ahead, the watch loop and re-encoding."""
