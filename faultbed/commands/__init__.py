"""One module per `faultbed` subcommand: each has `HELP`, `add_arguments(parser)` and `execute(args) -> int`."""
