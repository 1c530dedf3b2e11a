"""The outbox: what is left to deliver (payload), and the worker that delivers it."""
