"""L3: the Ray Serve application that answers with the champion policy's action."""
