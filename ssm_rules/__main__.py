from ssm_rules.cli import main

main(prog_name="ssm")
