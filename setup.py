"""Builds what pyproject.toml cannot declare: the rule engine's C core and the built-in rule packs.

The engine is durable-rules 2.0.28, carried in `ssm_rules/_durable/` with our patches (its
PATCHES.md says which and why). It is compiled into this package as `ssm_rules._durable._core`,
so it never meets a `durable` package or a `durable_rules_engine` module installed from PyPI.
The rule packs in `rules/` ship inside the package as `ssm_rules/builtin_rules/`; a source
checkout (or an editable install) reads them from `rules/` directly.
"""

from __future__ import annotations

import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ENGINE = "ssm_rules/_durable/c-src"
CORE = Extension(
    "ssm_rules._durable._core",
    sources=[f"{ENGINE}/rules/{name}.c" for name in ("json", "rete", "state", "events", "regex")]
    + [f"{ENGINE}/rulespy/rules.c"],
    depends=[f"{ENGINE}/rules/{name}.h" for name in ("json", "regex", "rete", "rules", "state")],
    include_dirs=[f"{ENGINE}/rules"],
)

# The C core is C99 with POSIX extensions (asprintf). Hidden visibility exports nothing but the
# module's init function, so its symbols cannot collide with another copy of the engine loaded
# in the same process (the PyPI durable-rules), whatever the dlopen flags.
UNIX_FLAGS = ["-std=c99", "-D_GNU_SOURCE", "-fvisibility=hidden"]


class BuildCore(build_ext):
    def build_extensions(self) -> None:
        if self.compiler.compiler_type != "msvc":
            for extension in self.extensions:
                extension.extra_compile_args = [*UNIX_FLAGS, *extension.extra_compile_args]
        super().build_extensions()


class BuildWithRules(build_py):
    """Copies the rule packs (`rules/`) into the built package as `ssm_rules/builtin_rules/`."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads rules/ in place
        target = os.path.join(self.build_lib, "ssm_rules", "builtin_rules")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree("rules", target, ignore=shutil.ignore_patterns(".*", "__pycache__", "*.py[cod]"))


setup(ext_modules=[CORE], cmdclass={"build_ext": BuildCore, "build_py": BuildWithRules})
