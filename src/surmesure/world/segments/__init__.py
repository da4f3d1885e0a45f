"""Segment definitions shipped with the demo world, copied to ``demo/segments``."""
