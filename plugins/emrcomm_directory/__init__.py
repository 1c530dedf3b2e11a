"""emrcomm built-in plugin: directory (being written)."""
