"""One module per `ssm` command; `ssm_rules.cli` imports them only when used."""
