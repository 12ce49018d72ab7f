"""Image variants: the MEDIA_VARIANTS presets made from an image's current original."""
