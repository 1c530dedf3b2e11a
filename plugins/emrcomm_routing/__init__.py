"""emrcomm built-in plugin: routing (being written)."""
