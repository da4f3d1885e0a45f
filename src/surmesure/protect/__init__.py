"""Protect: consent in force, access to, export and erasure of the data held about a person."""
