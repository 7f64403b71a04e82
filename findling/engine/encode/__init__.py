"""Encoding: model resolution (local cache, user folder, bundled fallback), the encoders, and the chunker."""
