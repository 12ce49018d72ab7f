"""Video and audio operations: transcode, trim, thumbnail, and the poster variant."""
