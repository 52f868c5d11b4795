"""RAG Explorer core: loaders, chunking, embeddings, stores, retrieval and answering.

Heavy dependencies (numpy, chromadb, tokenizers) are imported lazily by the modules that need
them, so importing :mod:`shared` itself is cheap.
"""

__version__ = "0.1.0"
