"""Importers: turn a CRM export into account plans (`ssm import ...`).

Each importer is a module of pure logic (files in, plan text out) that the `import` command
wires; nothing here is imported by the other commands.
"""
