"""Plumbing for calls to model services over the network, shared by the LLM providers (``shared.llm``)
and the remote embedders (``shared.embeddings``): client construction, error classification, retries."""
