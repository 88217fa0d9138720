"""The Keras applications of the seed's model zoo, exported as SavedModels with a uint8 signature.

Each model is built with ``weights=None`` at its native input size and exported with a
``serving_default`` signature that takes uint8 images (N, S, S, 3), casts to float and divides
by 255 inside, runs the model and returns ``classes`` (the argmax), as the seed's models did.
Calls always go through the signature (a ``tf.function``): EfficientNetB5-B7 called eagerly
need 12-24 GB of memory, through the traced signature 2-3 GB.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferperf.models.zoo_specs import ZOO


def import_tensorflow(threads: int | None = None):
    """TensorFlow, imported safely next to torch.

    The ``triton`` compiler package (pulled in by torchao and torch.compile) registers LLVM
    options that TensorFlow's own LLVM has already registered when TF was imported first; the
    process then aborts ("LLVM ERROR: inconsistency in registered CommandLine options").
    Importing ``triton`` before TensorFlow avoids it.
    """
    import sys

    if "tensorflow" not in sys.modules:
        try:
            import triton  # noqa: F401
        except ImportError:
            pass
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TF already initialised its pools: the env (TF_NUM_INTRAOP_THREADS) applied
    return tf


@dataclass(frozen=True)
class ExportedKeras:
    key: str
    directory: Path
    params: int
    image_size: int
    export_s: float


def export_keras(key: str, directory: Path, seed: int = 0) -> ExportedKeras:
    """Build ``key`` with random weights and export it with the uint8 -> classes signature."""
    tf = import_tensorflow()
    import keras

    spec = ZOO[key]
    constructor, size = spec.keras, spec.image_size
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = getattr(keras.applications, constructor)(weights=None, input_shape=(size, size, 3))

    def serve(images):
        scaled = tf.cast(images, tf.float32) / 255.0
        return {"classes": tf.argmax(model(scaled, training=False), axis=-1, output_type=tf.int32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default", fn=serve, input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")]
    )
    archive.write_out(str(directory), verbose=False)
    params = int(model.count_params())
    del model, archive
    keras.backend.clear_session()
    return ExportedKeras(key, directory, params, size, time.perf_counter() - started)


class LocalSavedModel:
    """The exported signature loaded in-process: the seed's "local" mode."""

    def __init__(self, directory: Path, threads: int | None = None) -> None:
        tf = import_tensorflow(threads)
        started = time.perf_counter()
        self._tf = tf
        self.loaded = tf.saved_model.load(str(directory))
        self.signature = self.loaded.signatures["serving_default"]
        self.load_s = time.perf_counter() - started

    def __call__(self, images: Any) -> Any:  # uint8 (N, S, S, 3) -> classes (N,), numpy
        return self.signature(images=self._tf.constant(images))["classes"].numpy()
