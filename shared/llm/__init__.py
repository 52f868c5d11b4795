"""LLM providers (OpenAI-compatible, Amazon Bedrock), resilience (retries, circuit breakers, fallback
chains) and the grounded prompt. :mod:`shared.answering.generative` verifies what they write."""
