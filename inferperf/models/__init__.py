"""Model builders, one module per family: each builds a model from its config with random weights,
saves it, and loads it back through the real loading path (``from_pretrained(dir)``, a SavedModel,
a GGUF). A builder knows nothing of the techniques that use it.

Light modules (``zoo_specs``, ``text_specs``) hold the registries case lists read without torch;
``store`` caches built artefacts across a session. Part of the measuring side.
"""
