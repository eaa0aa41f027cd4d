"""Tools the model may call: ones the client runs (Realtime function tools) and ones the server runs."""
