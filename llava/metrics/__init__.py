"""Answer metrics and annotation formats: the one home that data/, eval/ and train/ import from below."""
