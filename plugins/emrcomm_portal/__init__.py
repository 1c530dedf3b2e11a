"""emrcomm built-in plugin: portal (being written)."""
