"""emrcomm built-in plugin: templates (being written)."""
