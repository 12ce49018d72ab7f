"""tus 1.0 resumable uploads (core, creation, creation-with-upload, termination, checksum,
expiration) at /api/v1/uploads/tus."""
