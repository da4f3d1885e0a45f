"""Decide: content, offers, products and context for one person and placement, explained."""
