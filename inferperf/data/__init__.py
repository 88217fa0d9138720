"""Image corpus, torch datasets/loaders and DALI pipelines."""
