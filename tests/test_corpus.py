import io

from tests.helpers import needs


def test_corpus_is_deterministic_and_coco_sized(tmp_path):
    needs("skimage", "torch")
    from PIL import Image

    from inferperf.data.corpus import SIZES, Corpus, render

    corpus = Corpus(tmp_path / "a")
    paths = corpus.paths(12)
    assert len({p.read_bytes() for p in paths}) == 12  # all different images
    assert render(5) == Corpus(tmp_path / "b").path(5).read_bytes()  # same bytes on every machine
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size in SIZES


def test_sized_rendering_hits_the_requested_size(tmp_path):
    needs("skimage", "torch")
    from PIL import Image

    from inferperf.data.corpus import Corpus

    path = Corpus(tmp_path).sized(3, (640, 384))
    assert Image.open(io.BytesIO(path.read_bytes())).size == (640, 384)
