"""Signed on-the-fly image transforms (`/t/{signature}/{options}/{media_id}`)."""
