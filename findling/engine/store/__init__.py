"""The index file: SQLite schema, the Store, token-vector codecs and the reads searches make."""
