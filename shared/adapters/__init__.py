"""Delivery adapters: what puts the core (``shared/``) in front of people and AWS.

``http_api`` (the REST API for API Gateway and ``rag-explorer serve``), ``s3_sync`` (S3 events to the
index), ``health`` (liveness and readiness) and ``push`` (a docs folder to the document bucket). They
may use Powertools and boto3; the core may not import them.
"""
