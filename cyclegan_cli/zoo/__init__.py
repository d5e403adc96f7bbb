"""Where weights are: the catalogue of named models, downloads with checksum and cache,
the user's own zoo, the registry of local training runs, and the one ``--model`` resolver."""
