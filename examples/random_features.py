"""Write a stand-in feature network for ``ganctl eval --features``: a fixed-seed random conv net
as TorchScript, float32 (N, 3, 299, 299) in [0, 1] -> (N, 256). For machines where the Inception
weights cannot be had: its FID/KID are comparable only with figures computed with the same file.

    python examples/random_features.py random-features.pt
"""

import sys

import torch
from torch import nn


def main(path: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 5, stride=2), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2), nn.ReLU(), nn.Conv2d(128, 256, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ).eval()
    torch.jit.script(net).save(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "random-features.pt")
