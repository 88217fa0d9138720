"""Model builders, one module per family. A builder knows nothing of the techniques that use it."""
