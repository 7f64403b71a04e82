"""Evaluation: BEIR-style retrieval runs (``findling eval``) and the long-context passkey test."""
