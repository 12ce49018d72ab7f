"""Image operations on request: convert, resize and crop (a derived media or a new version)."""
