"""Dispatch: how one stage hands its changes on to the stages after it.

Collect appends a row to the ``changes`` outbox in the same transaction as the data it stores
(:mod:`.outbox`), and imports nothing of the stages after it. A dispatcher (:mod:`.dispatcher`)
reads the outbox in order and delivers each change to every subscriber (:mod:`.subscribers`):
real-time segment membership, the serving cache. Each subscriber has its own cursor; a handler
runs in the transaction that moves its cursor, so a change is delivered at least once and a
handler that writes to the store takes effect exactly once. In-process by default
(:mod:`.background`); through NATS JetStream when ``SURMESURE_DISPATCH`` names a server
(:mod:`.broker`), with the same handlers.
"""
