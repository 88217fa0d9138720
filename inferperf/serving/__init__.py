"""Serving: the Triton host process, its lifecycle, and KServe-v2 clients."""
