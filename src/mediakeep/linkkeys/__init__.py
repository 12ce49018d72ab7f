"""Per-org link-signing keys with key ids: the table's SQL, an in-process keyring, rotation."""
