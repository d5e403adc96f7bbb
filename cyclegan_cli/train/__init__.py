"""Training: the options of each model kind as data (:mod:`.options`), one plain function per kind
(``train_cyclegan``, ``train_cut``, ``train_pix2pix``, ``train_dcgan``) over the shared step loop
(:mod:`.loop`), which keeps its files through the run folder (:mod:`.runfolder`) and the
checkpointer (:mod:`.checkpointer`); DDP in :mod:`.distributed`."""
