"""Direct-to-storage uploads: upload URLs (S3 presigned POST or the local signed PUT), finalize."""
