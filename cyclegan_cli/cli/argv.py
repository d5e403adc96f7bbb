"""The arguments of this ganctl invocation as :func:`cyclegan_cli.cli.main` received them, for a
command that needs their order (arithmetic's ``--plus``/``--minus`` groups), which parsing loses.
Its own module, below every command, so that no command imports the CLI's entry point."""

ARGV: list[str] = []
