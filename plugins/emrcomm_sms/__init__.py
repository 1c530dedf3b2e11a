"""emrcomm built-in plugin: sms (being written)."""
