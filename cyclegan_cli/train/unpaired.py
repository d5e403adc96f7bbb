"""What the unpaired kinds (CycleGAN, CUT/FastCUT) share: the two folders scanned and the process
started, the data order (B drawn independently of A) and the fixed images of the sample grids."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from cyclegan_cli.data.datasets import UnpairedDataset, center, epoch_order, scan_folder
from cyclegan_cli.train import loop
from cyclegan_cli.train.distributed import start_process
from cyclegan_cli.train.runfolder import schedule_length
from cyclegan_cli.train.task import GANTask


def start(folder_a, folder_b, o, cb: loop.Callbacks):
    """(files A, files B, dist, device, options resolved, total steps): the folders read (one line
    per unreadable file), DDP and the device set up, the domain names (default the folders'), and
    the length of the schedule."""
    files_a, _ = scan_folder(Path(folder_a), on_skip=cb.on_notice)
    files_b, _ = scan_folder(Path(folder_b), on_skip=cb.on_notice)
    dist, dev = start_process(o, cb)
    o = replace(o.resolved(), domains=list(o.domains or [Path(folder_a).resolve().name, Path(folder_b).resolve().name]))
    n = max(len(files_a), len(files_b)) // dist.world // o.batch_size or 1
    return files_a, files_b, dist, dev, o, schedule_length(o.max_steps, n, o.epochs, o.decay_epochs)


def folders_saved(folder_a, folder_b) -> dict:
    """The folders, as a run's options.json keeps them."""
    return {"folder_a": str(Path(folder_a).resolve()), "folder_b": str(Path(folder_b).resolve())}


class UnpairedTask(GANTask):
    """A task on two unpaired folders: ``self.dataset`` and ``self.fixed_A`` / ``self.fixed_B``."""

    def _load_unpaired(self, files_a, files_b, o, on_skip) -> None:
        size = o.size
        self.dataset = UnpairedDataset(files_a, files_b, o.load_size, size, o.flip, o.seed, on_skip=on_skip)
        n = 4  # a fixed sample set spread over each folder (not its first n files, often one source)
        self.fixed_A = torch.stack([center(self.dataset.a.get(i), size) for i in range(0, len(files_a), max(1, len(files_a) // n))[:n]])
        self.fixed_B = torch.stack([center(self.dataset.b.get(i), size) for i in range(0, len(files_b), max(1, len(files_b) // n))[:n]])

    def epoch_keys(self, epoch: int) -> list:
        n, na, nb = len(self.dataset), len(self.dataset.a), len(self.dataset.b)
        order = epoch_order(n, self.seed, epoch)
        order_b = epoch_order(n, self.seed, epoch, salt=1)  # B is drawn independently of A: unpaired
        return [(epoch, i, order[i] % na, order_b[i] % nb) for i in range(n)]
