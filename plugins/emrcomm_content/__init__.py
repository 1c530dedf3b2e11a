"""emrcomm built-in plugin: content (being written)."""
