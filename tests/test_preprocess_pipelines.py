"""Every preprocessing pipeline does the same logical work as the Pillow reference.

Tolerances: JPEG decoders (libjpeg-turbo in Pillow and torchvision, DALI's decoders) and
resamplers differ by a few intensity levels, so outputs must agree with the Pillow + torchvision
reference to a mean absolute difference of 3 levels of 255 for uint8 output (0.05 in
normalized units for imagenet224, about 3 levels / 0.225).
"""

import pytest

from tests.helpers import needs

TOLERANCE = {"resize240": 3.0, "imagenet224": 0.05}
COUNT, BATCH = 5, 2  # 5 images in batches of 2: the last batch is partial


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    needs("torch", "torch")
    needs("skimage", "torch")
    from inferperf.data.corpus import Corpus

    return Corpus(tmp_path_factory.mktemp("corpus")).paths(COUNT)


def _run(variant, recipe_name, paths):
    import torch

    from inferperf.data.pipelines import PIPELINES, build_pipeline
    from inferperf.data.preprocess import RECIPES
    from inferperf.params import skip_reason

    spec = PIPELINES[variant]
    from inferperf.cases import Case

    reason = skip_reason(Case("preprocess", recipe_name, variant, spec.device, requires=spec.requires))
    if reason:
        pytest.skip(reason)
    pipeline = build_pipeline(spec, paths, RECIPES[recipe_name], BATCH, threads=2)
    try:
        epochs = []
        for _ in range(2):  # two epochs: the pipeline restarts cleanly
            batches = [(images.cpu().clone(), labels.cpu().clone()) for images, labels in pipeline.epoch()]
            epochs.append(batches)
    finally:
        pipeline.close()
    images = torch.cat([b[0] for b in epochs[0]])
    labels = torch.cat([b[1] for b in epochs[0]])
    assert [len(b[1]) for b in epochs[0]] == [2, 2, 1]
    assert torch.equal(images, torch.cat([b[0] for b in epochs[1]]))
    return images, labels


@pytest.mark.parametrize("recipe_name", ["resize240", "imagenet224"])
@pytest.mark.parametrize(
    "variant", ["pillow_w2", "tv_cpu", "tv_cuda", "dali_cpu_file", "dali_cpu_ext", "dali_gpu_file", "dali_gpu_ext"]
)
def test_pipeline_agrees_with_the_pillow_reference(variant, recipe_name, paths):
    from inferperf.data.preprocess import RECIPES

    reference, reference_labels = _run("pillow_w0", recipe_name, paths)
    images, labels = _run(variant, recipe_name, paths)
    recipe = RECIPES[recipe_name]
    assert images.shape == reference.shape == (COUNT, 3, recipe.out_size, recipe.out_size)
    assert images.dtype == reference.dtype == recipe.dtype
    assert labels.tolist() == reference_labels.tolist() == [0, 1, 0, 1, 0]
    difference = (images.double() - reference.double()).abs().mean().item()
    assert difference <= TOLERANCE[recipe_name], f"{variant}: mean |diff| {difference:.3f} > {TOLERANCE[recipe_name]}"


def test_pipeline_is_not_trivially_equal_to_noise(paths):
    """The tolerance is meaningful: a different image is far outside it."""
    reference, _ = _run("pillow_w0", "resize240", paths)
    shifted = reference.roll(1, dims=0)
    assert (shifted.double() - reference.double()).abs().mean().item() > 5 * TOLERANCE["resize240"]
