import pytest

from tests.helpers import needs


@pytest.fixture(scope="module")
def corpus_paths(tmp_path_factory):
    needs("torch", "torch")
    needs("skimage", "torch")
    from inferperf.data.corpus import Corpus

    return Corpus(tmp_path_factory.mktemp("corpus")).paths(10)


class ToTensor:
    """A stand-in for an image processor: fixed-size resize to a (3, 32, 32) float tensor."""

    def __call__(self, images, return_tensors="pt"):
        import numpy as np
        import torch

        arrays = [np.asarray(im.resize((32, 32)), dtype=np.float32).transpose(2, 0, 1) for im in images]
        return {"pixel_values": torch.from_numpy(np.stack(arrays))}


@pytest.mark.parametrize("kind, batch, workers", [("single", 1, 0), ("manual", 4, 0), ("loader", 4, 0), ("loader", 4, 2)])
def test_every_source_yields_each_image_once_with_a_partial_last_batch(corpus_paths, kind, batch, workers):
    from inferperf.data.loaders import ImageProcessorTransform, batch_source

    source = batch_source(kind, corpus_paths, batch, ImageProcessorTransform(ToTensor()), workers=workers)
    try:
        for _ in range(2):  # a source is re-iterable: one full pass per call
            sizes = [len(b) for b in source()]
            assert sum(sizes) == len(corpus_paths)
            assert sizes[:-1] == [batch] * (len(sizes) - 1) and 0 < sizes[-1] <= batch
        first = next(iter(source()))
        assert tuple(first.shape[1:]) == (3, 32, 32)
    finally:
        source.close()


def test_single_source_refuses_batches(corpus_paths):
    from inferperf.data.loaders import ImageProcessorTransform, batch_source

    with pytest.raises(ValueError, match="batch 1"):
        batch_source("single", corpus_paths, 4, ImageProcessorTransform(ToTensor()))


def test_tensor_preprocessing_matches_the_image_processor(corpus_paths):
    """gpu_pre's preprocessing, run on the CPU: the CLIP image processor's resize, crop and normalize."""
    needs("transformers", "torch")
    from transformers import CLIPImageProcessor

    from inferperf.data.loaders import (
        ImageProcessorTransform,
        batch_source,
        preprocessing_agreement,
    )

    processor = CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    transform = ImageProcessorTransform(processor)
    agreement = preprocessing_agreement(corpus_paths[:6], transform, "cpu")
    # Pillow's and torchvision's bicubic kernels differ by a few levels at most (pixels are in std units, ~1/0.27 per 255)
    assert agreement["pixel_mean_abs_diff"] < 0.05 and agreement["images"] == 6
    # with a classifier, the probabilities both preprocessings lead to (here: the channel means, softmaxed)
    with_probs = preprocessing_agreement(corpus_paths[:6], transform, "cpu", lambda batch: batch.mean(dim=(2, 3)).softmax(-1))
    assert with_probs["pixel_max_abs_diff"] == agreement["pixel_max_abs_diff"]
    assert with_probs["probs_max_abs_diff"] < 0.01 and with_probs["top1_match"] == 1.0
    source = batch_source("tensor_pre", corpus_paths, 4, transform, device="cpu")
    shapes = [tuple(batch.shape) for batch in source()]
    assert shapes == [(4, 3, 64, 64), (4, 3, 64, 64), (2, 3, 64, 64)]
