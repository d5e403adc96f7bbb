"""What the training tasks of every model kind share: precision (autocast, and a GradScaler for
fp16), memory format, Adam for the generators and the discriminators, and their resume state."""

from __future__ import annotations

import torch


def recipe_init(recipe):
    """How a method's recipe (:class:`cyclegan_cli.train.options.Recipe`) starts a network: the
    official ``init_weights`` with its init type and gain."""
    from cyclegan_cli.models.cyclegan import init_weights

    return lambda net: init_weights(net, recipe.init_gain, recipe.init)


class GANTask:
    """Base of CycleGANTask and DCGANTask; :func:`cyclegan_cli.train.loop.fit` drives both."""

    def _build_nets(self, specs: dict, init, device: torch.device, precision: str, channels_last, seed: int) -> None:
        """Precision and memory format for ``device``, then every net of ``specs`` (name -> (arch,
        args)) built, initialised by ``init`` from ``seed`` and moved to the device."""
        from cyclegan_cli.device import memory_format, training_dtype
        from cyclegan_cli.models import build

        self.amp = training_dtype(device, precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.mem = memory_format(device, channels_last)
        self.specs = specs
        torch.manual_seed(seed)
        self.nets = {}
        for name, (arch, args) in specs.items():
            net = build(arch, **args)
            init(net)
            self.nets[name] = net.to(device, memory_format=self.mem)

    def _optimizers(self, lr: float, beta1: float, g_params, d_params) -> None:
        self.opt_G = torch.optim.Adam(g_params, lr=lr, betas=(beta1, 0.999))
        self.opt_D = torch.optim.Adam(d_params, lr=lr, betas=(beta1, 0.999))

    def step_generator(self, step: int) -> torch.Generator:
        """A CPU generator seeded by (seed, rank, step) for a step's own random draws (augmentation,
        patch sampling, flips): the same after a resume, whenever the global generator was last used."""
        rank = getattr(getattr(self, "dist", None), "rank", 0)
        return torch.Generator().manual_seed(hash((self.seed, rank, step, 1)) & 0x7FFFFFFF)

    def current_lr(self) -> float:
        return self.opt_G.param_groups[0]["lr"]

    # the official ``linear`` policy, for the kinds that have ``epochs`` and ``decay_epochs``
    def lr_factor(self, epoch: int) -> float:
        """Constant for ``epochs``, then linear towards 0 over ``decay_epochs``; never negative."""
        return max(0.0, 1.0 - max(0, epoch + 1 - self.epochs) / float(self.decay_epochs + 1))

    def on_epoch(self, epoch: int) -> None:
        for opt in (self.opt_G, self.opt_D):
            for g in opt.param_groups:
                g["lr"] = self.lr * self.lr_factor(epoch)

    def extra_state(self) -> dict:
        """A subclass's own resume state (image pools, ...)."""
        return {}

    def load_extra_state(self, s: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {"opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "scaler": self.scaler.state_dict(), **self.extra_state()}

    def load_state_dict(self, s: dict) -> None:
        self.opt_G.load_state_dict(s["opt_G"])
        self.opt_D.load_state_dict(s["opt_D"])
        if s.get("scaler"):
            self.scaler.load_state_dict(s["scaler"])
        self.load_extra_state(s)
