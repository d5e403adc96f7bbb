"""Training: one plain function per model kind (``train_cyclegan``, ``train_dcgan``) over the
shared loop in :mod:`cyclegan_cli.train.loop` (data order, stats, samples, checkpoints, resume, DDP)."""
