"""Data for the image techniques: the JPEG corpus (real photographs from scikit-image), torch
datasets and loaders, and the preprocessing pipelines (Pillow, torchvision, DALI on CPU and GPU).

``recipes`` and ``sources`` are framework-free (case lists import them); the rest import torch or
DALI inside. Part of the measuring side: may import ``inferperf.cases`` and ``inferperf.text``.
"""
