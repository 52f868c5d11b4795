from local_cli.main import cli

cli()
