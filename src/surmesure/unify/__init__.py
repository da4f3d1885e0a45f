"""Unify: the identity graph (records -> people) and trait resolution."""
