"""emrcomm built-in plugin: records (being written)."""
