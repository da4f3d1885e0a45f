"""Deliver: channels that carry a message to a person, and the outbox that sends it once."""
