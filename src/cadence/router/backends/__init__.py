"""LLM backends the router can send a request to."""
