"""CDK constructs and stacks for RAG Explorer (storage, search, ingestion, API, monitoring)."""
