"""The two stacks of a stage: stateful (data) and stateless (everything replaceable)."""
