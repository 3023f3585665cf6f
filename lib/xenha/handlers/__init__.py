"""Programs DRBD runs as handlers (configured in the rendered resource files)."""
