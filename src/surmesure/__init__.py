"""surmesure: personalization for relationship marketing.

The package is laid out by the stages of the flow: collect -> unify -> derive -> segment ->
decide -> deliver -> measure -> learn, guarded by protect.
"""

__version__ = "0.1.0"
