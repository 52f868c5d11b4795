"""Generated answers: LLM providers behind one port, resilience (retries, circuit breakers, fallback
chains), a grounded prompt, and verification of every generated sentence against its cited sources."""
