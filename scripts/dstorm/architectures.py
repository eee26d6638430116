"""The registry of network architectures: names, what input each takes and which frame sizes it accepts.

The one owner of these facts, without importing torch (the config check and the simulate stage ask it):
the config schema's ``training.architecture``, the model file's ``architecture``, the training set's sizes
and reconstruction all consult :data:`ARCHITECTURES`; ``dstorm.model.network`` holds the classes, which take
their size rules from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Architecture", "ARCHITECTURES", "DEFAULT_ARCHITECTURE", "architecture", "common_frame_multiple"]


@dataclass(frozen=True)
class Architecture:
    """One architecture.

    name : its key in config and model files; class_name : its class in dstorm.model.network.
    input_upsampled : the network takes the frame upsampled ×U (nearest neighbour), else the camera's pixels.
    side_divisor : what the side of the network's input must be divisible by (its poolings).
    pads : the network pads other sides itself (and crops its output), so any frame fits.
    high_res_maps, camera_maps : float32 maps of the heatmap's size and of the frame's size that inference
        holds at once per frame (activations, the heatmap, peak finding): what the batch size is fitted to.
    compile_after_mpx : ``reconstruction.compile: auto`` compiles the network for an acquisition with at
        least this many megapixels of heatmap (frames × H·U × W·U): compiling costs 3–8 s, and at bf16 on a
        CPU saves 30–150 ms per megapixel for the faithful network and 0.7–1.8 ms for the fast one (whole
        stage and network alone, 64² and 256² frames, measured on an Intel Xeon with AMX,
        scripts/benchmarks/throughput.py), so above these it repays itself.
    """

    name: str
    class_name: str
    input_upsampled: bool
    side_divisor: int
    pads: bool
    high_res_maps: int
    camera_maps: int
    compile_after_mpx: float

    def frame_multiple(self, upsampling_factor: int) -> int:
        """Frame sides in camera pixels must be multiples of this at U = ``upsampling_factor``."""
        if self.pads:
            return 1
        if self.input_upsampled:
            return self.side_divisor // math.gcd(self.side_divisor, int(upsampling_factor))
        return self.side_divisor

    def inference_bytes(self, height: int, width: int, upsampling_factor: int) -> int:
        """Memory inference needs per frame of ``height × width`` camera pixels."""
        hr = height * width * int(upsampling_factor) ** 2
        return 4 * (self.high_res_maps * hr + self.camera_maps * height * width)


ARCHITECTURES = {
    "deepstorm": Architecture(
        "deepstorm", "DeepSTORMNet", input_upsampled=True, side_divisor=8, pads=False, high_res_maps=6 * 32, camera_maps=0,
        compile_after_mpx=100.0,
    ),
    "fast": Architecture(
        "fast", "FastNet", input_upsampled=False, side_divisor=4, pads=True, high_res_maps=8, camera_maps=6 * 96,
        compile_after_mpx=5000.0,
    ),
}  # fmt: skip
DEFAULT_ARCHITECTURE = "deepstorm"


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def common_frame_multiple(upsampling_factor: int) -> int:
    """A frame side that is a multiple of this fits every architecture at U = ``upsampling_factor`` (what
    a training set's calibration frames are cropped to, so that one training set serves every one)."""
    return math.lcm(*(a.frame_multiple(upsampling_factor) for a in ARCHITECTURES.values()))
