"""Recipes that build, fine-tune, evaluate and export Findling's models. Run each as ``python -m findling.training.<name>``."""
