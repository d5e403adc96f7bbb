"""The models ganctl ships and the zoo manifest (``zoo.json``), installed as package data
``cyclegan_cli.pretrained`` (see pyproject.toml) so a regular install finds them."""
