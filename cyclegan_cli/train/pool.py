"""The image pool of Shrivastava et al., as the official CycleGAN uses it (size 50): the
discriminator sees a mix of current and earlier fakes. Its randomness comes from its own
generator so that a resumed run makes the same choices."""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.gen = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for im in images.detach():
            im = im.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(im.clone())
                out.append(im)
            elif torch.rand(1, generator=self.gen).item() > 0.5:
                i = int(torch.randint(0, self.size, (1,), generator=self.gen).item())
                old = self.images[i].clone()
                self.images[i] = im.clone()
                out.append(old)
            else:
                out.append(im)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images], "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict, device=None) -> None:
        self.images = [t.to(device) if device is not None else t for t in state["images"]]
        self.gen.set_state(state["gen"])
