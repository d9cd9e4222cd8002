"""Code shared by the project's taps and target."""
