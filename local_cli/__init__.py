"""The `rag-explorer` command line (also installed as `deflect-bot`)."""
