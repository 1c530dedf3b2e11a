"""emrcomm built-in plugin: consent (being written)."""
