"""Collect: Segment-spec events over HTTP and file imports, validated, with quarantine."""
