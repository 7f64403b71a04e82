"""Searching: query parsing, exact and candidate MaxSim, BM25 and their fusion in the Searcher."""
