"""emrcomm built-in plugin: optout (being written)."""
