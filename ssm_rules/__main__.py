"""`python -m ssm_rules`: the `ssm` command, for when its script is not on PATH."""

from ssm_rules.cli import main

main(prog_name="ssm")
