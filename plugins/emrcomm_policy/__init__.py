"""emrcomm built-in plugin: policy (being written)."""
