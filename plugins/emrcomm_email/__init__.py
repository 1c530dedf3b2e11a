"""emrcomm built-in plugin: email (being written)."""
