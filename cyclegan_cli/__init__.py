"""ganctl: train GANs on image folders and run trained generators over images and videos.

The public Python API is imported lazily so that ``import cyclegan_cli`` (and therefore
``ganctl --help``) never pulls in torch.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_model": ("cyclegan_cli.checkpoints", "load_model"),
    "save_checkpoint": ("cyclegan_cli.checkpoints", "save_checkpoint"),
    "resolve_model": ("cyclegan_cli.zoo.resolve", "resolve_model"),
    "translate": ("cyclegan_cli.infer.translate", "translate"),
    "train_cyclegan": ("cyclegan_cli.train.cyclegan", "train_cyclegan"),
    "train_dcgan": ("cyclegan_cli.train.dcgan", "train_dcgan"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'cyclegan_cli' has no attribute {name!r}")
