"""The seed's classification zoo (docs/experiments.md#3): each model once, with both its builders.

Importable without TensorFlow or torch: the case lists read it. ``keras_zoo`` exports the Keras
application, ``timm_zoo`` the timm counterpart, both at the same native input size.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZooModel:
    key: str
    #: the ``keras.applications`` constructor
    keras: str
    #: the timm architecture of the same model
    timm: str
    #: native input side, pixels (square)
    image_size: int


ZOO: dict[str, ZooModel] = {
    m.key: m
    for m in (
        ZooModel("vgg16", "VGG16", "vgg16", 224),
        ZooModel("mobilenetv2", "MobileNetV2", "mobilenetv2_100", 224),
        ZooModel("resnet50", "ResNet50", "resnet50", 224),
        ZooModel("inceptionv3", "InceptionV3", "inception_v3", 299),
        ZooModel("xception", "Xception", "legacy_xception", 299),
        ZooModel("efficientnetb0", "EfficientNetB0", "efficientnet_b0", 224),
        ZooModel("efficientnetb1", "EfficientNetB1", "efficientnet_b1", 240),
        ZooModel("efficientnetb2", "EfficientNetB2", "efficientnet_b2", 260),
        ZooModel("efficientnetb3", "EfficientNetB3", "efficientnet_b3", 300),
        ZooModel("efficientnetb4", "EfficientNetB4", "efficientnet_b4", 380),
        ZooModel("efficientnetb5", "EfficientNetB5", "efficientnet_b5", 456),
        ZooModel("efficientnetb6", "EfficientNetB6", "efficientnet_b6", 528),
        ZooModel("efficientnetb7", "EfficientNetB7", "efficientnet_b7", 600),
    )
}


@dataclass(frozen=True)
class LoadVariant:
    """A served-throughput variant: concurrent clients, and Triton's dynamic batcher on or off."""

    clients: int
    dynamic_batching: bool

    @property
    def name(self) -> str:
        return f"load_c{self.clients}{'_dynbatch' if self.dynamic_batching else ''}"


def load_variants(clients: tuple[int, ...]) -> list[LoadVariant]:
    return [LoadVariant(c, dynamic) for c in clients for dynamic in (False, True)]
