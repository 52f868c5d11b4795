"""The CLI's commands, one module per group of related commands; `local_cli.main` registers them."""
