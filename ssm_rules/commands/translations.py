"""`ssm rules --extract-messages / --compile-translations / --check-translations`: a pack's catalogs.

For authors of rule packs; the work is in ssm_rules.catalogs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from ssm_rules import i18n
from ssm_rules.errors import UsageError


def extract_or_compile(packs, rule_dirs: Sequence[str], *, extract: bool, compile_: bool) -> None:
    """Write each --rules pack's rules.pot and/or its .mo files (never into the built-in packs,
    which live in ssm's installation)."""
    from ssm_rules import catalogs
    from ssm_rules.atomic import write_bytes_atomic

    given = {os.path.realpath(directory) for directory in rule_dirs}
    own = [pack for pack in packs if os.path.realpath(pack.directory) in given]
    if not own:
        raise UsageError("name the pack whose catalogs to write with --rules DIR (the built-in packs' "
                         "catalogs ship with ssm)")
    for pack in own:
        locale = Path(pack.directory) / i18n.LOCALE_DIR
        if extract:
            messages = catalogs.pack_messages(pack)
            target = locale / f"{i18n.PACK_DOMAIN}.pot"
            _write(target, catalogs.template(messages, pack.name), write_bytes_atomic)
            click.echo(f"{target}: {len(messages)} messages (start a language with: "
                       f"msginit -i {target} -l zh_Hant -o {locale}/zh_Hant/LC_MESSAGES/{i18n.PACK_DOMAIN}.po)")
        if compile_:
            found = catalogs.pack_catalogs(pack.directory)
            if not found:
                click.echo(f"{pack.directory}: no catalog (locale/LANG/LC_MESSAGES/{i18n.PACK_DOMAIN}.po)")
            for _language, po in found:
                try:
                    data = catalogs.compile_mo(po)
                except (OSError, ValueError) as error:
                    raise UsageError(f"{po}: {error}") from None
                _write(po.with_suffix(".mo"), data, write_bytes_atomic)
                click.echo(f"{po.with_suffix('.mo')}: compiled")


def _write(path: Path, data: bytes, write) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(str(path), data)
    except OSError as error:
        raise UsageError(f"{path}: cannot write it: {error.strerror or error}") from None


def check(packs) -> None:
    """Every catalog of every loaded pack: errors (exit 1), stale entries, what is missing."""
    from ssm_rules import catalogs

    errors = 0
    checked = 0
    for pack in packs:
        messages = catalogs.pack_messages(pack)
        for language, po in catalogs.pack_catalogs(pack.directory):
            checked += 1
            if i18n.normalize(language) != language:
                click.echo(f"{po}: warning: ssm does not speak {language!r} ({', '.join(i18n.LANGUAGES)}): "
                           f"this catalog is never read")
            report = catalogs.check_catalog(po, messages)
            for problem in report.problems:
                click.echo(str(problem))
            errors += sum(1 for problem in report.problems if problem.error)
            click.echo(f"{po}: {report.translated} of {len(messages)} texts translated"
                       + (f", {report.untranslated} shown in English" if report.untranslated else ""))
    click.echo(f"{checked} catalog{'' if checked == 1 else 's'} checked: "
               f"{errors} error{'' if errors == 1 else 's'}.")
    sys.exit(1 if errors else 0)
