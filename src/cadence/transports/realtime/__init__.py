"""The OpenAI Realtime protocol (with Inworld's providerData) served over WebSocket."""
