"""What ssm works out from files, kept between runs and keyed by a hash of everything it depends on.

A portfolio changes little between two runs, and most of the work on an unchanged file gives
the same answer again. Four kinds of entry, each under a SHA-256 of its inputs:

    plan      the plan file's bytes (and whether it is JSON)       -> the loaded Document and the
                                                                      validated Plan, or its problems
    packs     the rule pack directories: every file's path and bytes -> the loaded rule packs
    compiled  the packs' key, settings, severities, selected rules   -> the compiled rules
    result    the plan's key, the compiled key, the file's name      -> the as-of date last checked,
                                                                      the findings and the outcome,
                                                                      the engine run's record and
                                                                      the facts it was given

A plan entry does not depend on the as-of date, so it serves every later run until the file
changes; a result entry serves re-runs with the same as-of date (pre-commit on every commit,
CI re-runs, a second audit the same day), and the next day's run replaces it, so a nightly
audit does not add an entry a night. On another date the entry's facts are moved to the new
date and its engine record is reused when no rule can tell the dates apart (ssm_rules.replay),
so a nightly audit of unchanged plans neither loads them nor runs the rule engine, except on the
plans where a threshold was crossed. The directory grows by 20 to 30 KB for each version of
a plan it has seen; nothing is evicted (delete the directory to start afresh).

Every key also covers the tool: its version and the names, sizes and modification times of
its own source files, so a new release or an edited checkout starts afresh. A changed file,
rule or tool therefore never meets an old entry.

Where: `--cache-dir DIR`, else `$SSM_CACHE_DIR`, else `.ssm_cache/` in the current directory.
The directory can be moved or deleted at any time (`--no-cache` bypasses it); it holds a
`.gitignore` so that it is never committed by accident.

Safety. Entries are pickles, and unpickling runs code, so ssm only loads entries it wrote
itself: each carries an HMAC-SHA256 of its kind, key and content under a random secret that
lives outside the cache directory, readable by the user alone
(`$XDG_CACHE_HOME/ssm/cache-key`, default `~/.cache/ssm/cache-key`, mode 0600). A cache
directory that came with a repository (a pull request can add `.ssm_cache/` files) or was
written by another user is therefore just ignored; so are truncated and corrupt entries.
Without a usable secret (no home directory) the cache is off. Entries are written to a
temporary file and renamed into place, so a reader never sees half of one, and parallel
workers can share a directory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import stat
import sys
import zlib
from pathlib import Path
from typing import Any

from ssm_rules import __version__
from ssm_rules.atomic import read_regular_file

_MAX_PACK_FILE_BYTES = 16 * 1024 * 1024  # rule files are capped far lower (rulepack.MAX_RULE_FILE_BYTES)
DEFAULT_DIRECTORY = ".ssm_cache"
ENV_DIRECTORY = "SSM_CACHE_DIR"
_FORMAT = b"ssm-cache-1\n"  # starts every entry; a new layout gets a new tag
_MAX_ENTRY_BYTES = 256 * 1024 * 1024  # far above any entry; a planted huge file is not read whole
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NON_BLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as an entry is refused, not waited on
_KEY_BYTES = 32
_MAC_BYTES = 32


def directory_for(option: str | os.PathLike | None = None) -> Path:
    """The cache directory: the option, else $SSM_CACHE_DIR, else ./.ssm_cache."""
    return Path(option or os.environ.get(ENV_DIRECTORY) or DEFAULT_DIRECTORY)


def open_cache(option: str | os.PathLike | None = None, *, enabled: bool = True, warn: bool = True) -> Cache | None:
    """The cache the command line asked for, or None (disabled, no secret can be kept, or the
    directory is a symbolic link or not a directory: then with a warning on standard error)."""
    if not enabled:
        return None
    secret = _secret()
    if secret is None:
        return None
    directory = directory_for(option)
    reason = unsafe_reason(directory)
    if reason is not None:
        if warn:
            _warn(f"{reason}; running without the cache")
        return None
    return Cache(directory, secret)


def unsafe_reason(directory: str | os.PathLike) -> str | None:
    """Why `directory` must not be used as the cache, or None. A repository can commit
    `.ssm_cache` as a symbolic link: following it would write entries, a .gitignore and a
    CACHEDIR.TAG wherever it points."""
    try:
        info = os.lstat(directory)
    except OSError:
        return None  # created on first write
    if stat.S_ISLNK(info.st_mode):
        return f"the cache directory {os.fspath(directory)} is a symbolic link, which ssm never follows"
    if not stat.S_ISDIR(info.st_mode):
        return f"the cache directory {os.fspath(directory)} exists and is not a directory"
    return None


def _warn(message: str) -> None:
    sys.stderr.write(f"ssm: warning: {message}\n")


class Cache:
    """A directory of authenticated entries. Reads and writes never raise: a cache that cannot
    be used only makes a run slower.

    Nothing in it is trusted, the layout included: a folder or entry that is a symbolic link or
    a special file is never followed, opened or written through (the cache is then switched
    off, with a warning)."""

    def __init__(self, directory: str | os.PathLike, secret: bytes):
        self.directory = Path(directory)
        self._secret = secret
        self._prepared = False
        self._folders: set[Path] = set()  # folders known to exist, as real directories
        self._disabled = False

    def __reduce__(self):
        # Sent to audit workers as its directory only; each process reads the secret itself.
        return (_reopen, (str(self.directory),))

    def get(self, kind: str, key: str) -> Any:
        """The value stored under (kind, key), or None when there is none we can trust."""
        path = self._path(kind, key)
        if self._disabled or not self._folder_ready(path.parent, create=False):
            return None
        try:
            descriptor = os.open(path, os.O_RDONLY | _NO_FOLLOW | _NON_BLOCK)
        except OSError:
            return None
        with os.fdopen(descriptor, "rb") as stream:
            try:
                if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                    return None
                blob = stream.read(_MAX_ENTRY_BYTES + 1)
            except OSError:
                return None
        if len(blob) > _MAX_ENTRY_BYTES:
            return None
        head = len(_FORMAT)
        if not blob.startswith(_FORMAT) or len(blob) < head + _MAC_BYTES:
            return None
        mac, payload = blob[head:head + _MAC_BYTES], blob[head + _MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(kind, key, payload)):
            return None
        return unpack(payload)

    def put(self, kind: str, key: str, value: Any) -> None:
        if self._disabled:
            return
        payload = pack(value)
        if payload is None:
            return
        path = self._path(kind, key)
        temporary = f"{path}.{os.getpid()}.tmp"  # one writer per process: the pid makes it unique
        try:
            self._prepare()
            if self._disabled or not self._folder_ready(path.parent, create=True):
                return
            try:  # never through something already there (a link planted under this name)
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o600)
            except FileExistsError:  # left by a killed run of a process with this pid
                os.unlink(temporary)
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o600)
            try:
                with os.fdopen(descriptor, "wb") as stream:
                    stream.write(_FORMAT + self._mac(kind, key, payload) + payload)
                os.replace(temporary, path)
            except BaseException:
                _unlink(temporary)
                raise
        except OSError:
            pass  # read-only or full disk: run without keeping it

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / key[:2] / key

    def _mac(self, kind: str, key: str, payload: bytes) -> bytes:
        return hmac.digest(self._secret, f"{kind}\0{key}\0".encode() + payload, "sha256")

    def _prepare(self) -> None:
        """Create the directory with a .gitignore (and the tag backup tools know) once."""
        if self._prepared:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        reason = unsafe_reason(self.directory)  # made a link since the cache was opened?
        if reason is not None:
            self._disable(reason)
            return
        for name, text in ((".gitignore", "# Written by ssm: a cache, never commit it.\n*\n"),
                           ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n"
                                            "# The ssm cache (ssm_rules.cache); delete it at any time.\n")):
            try:  # whatever is there already (a link included) is left alone
                descriptor = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW,
                                     0o644)
            except FileExistsError:
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(text)
        self._prepared = True

    def _folder_ready(self, folder: Path, *, create: bool) -> bool:
        """Whether `folder` (kind/xx below the cache directory) is a real directory, made when
        `create`; a symbolic link or a file among its parts switches the cache off."""
        if folder in self._folders:
            return True
        for part in (self.directory, folder.parent, folder):
            try:
                info = os.lstat(part)
            except FileNotFoundError:
                if not create:
                    return False
                try:
                    os.mkdir(part)
                except FileExistsError:
                    pass
                info = os.lstat(part)
            if not stat.S_ISDIR(info.st_mode):
                what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
                self._disable(f"{part} in the cache is {what}, which ssm never follows")
                return False
        self._folders.add(folder)
        return True

    def _disable(self, reason: str) -> None:
        if not self._disabled:
            self._disabled = True
            _warn(f"{reason}; running without the cache")


def pack(value: Any) -> bytes | None:
    """`value` as an entry stores it; None when it cannot be. An entry may hold a packed part of
    itself, which a reader that does not need it never decodes (`unpack` when it does)."""
    try:
        # Level 1 shrinks a plan's entry about four times for a fraction of a millisecond.
        return zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1)
    except Exception:  # noqa: BLE001 - a value that cannot be pickled is simply not kept
        return None


def unpack(packed: bytes) -> Any:
    """The value `pack` gave, or None. Only for bytes read from an entry whose signature was
    checked (`Cache.get`), or a part of such an entry: unpickling runs code."""
    try:
        return pickle.loads(zlib.decompress(packed))
    except Exception:  # noqa: BLE001 - written by an older ssm with other classes: a miss
        return None


def _reopen(directory: str) -> Cache | None:
    return open_cache(directory)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ---- the secret -----------------------------------------------------------------------------

_secret_value: bytes | None = None


def _secret_path() -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if not home or home == "~":
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "ssm" / "cache-key"


def _secret() -> bytes | None:
    """This user's secret, created on first use; None when it cannot be kept safely."""
    global _secret_value
    if _secret_value is not None:
        return _secret_value
    path = _secret_path()
    if path is None:
        return None
    try:
        _secret_value = _read_secret(path)
    except FileNotFoundError:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(os.urandom(_KEY_BYTES))
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:
            return None
        try:
            _secret_value = _read_secret(path)
        except OSError:
            return None
    except OSError:
        return None
    return _secret_value


def _read_secret(path: Path) -> bytes | None:
    with open(path, "rb") as stream:
        info = os.fstat(stream.fileno())
        secret = stream.read(_KEY_BYTES + 1)
    # Only a secret nobody else can read or replace protects anything.
    if (hasattr(os, "getuid") and info.st_uid != os.getuid()) or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return secret if len(secret) == _KEY_BYTES else None


# ---- keys -----------------------------------------------------------------------------------

_tool: str | None = None


def tool_fingerprint() -> str:
    """The version, and the name, size and modification time of every source file of the
    package: any change to the tool makes every key new."""
    global _tool
    if _tool is None:
        digest = hashlib.sha256(f"ssm {__version__}\0".encode())
        package = Path(__file__).resolve().parent
        for path in sorted(package.rglob("*.py")):
            try:
                info = path.stat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(package)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        _tool = digest.hexdigest()
    return _tool


def digest(*parts: str | bytes) -> str:
    """SHA-256 of the tool fingerprint and `parts`, each delimited."""
    value = hashlib.sha256(tool_fingerprint().encode())
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        value.update(len(data).to_bytes(8, "little"))
        value.update(data)
    return value.hexdigest()


def plan_key(raw: bytes, filename: str) -> str:
    """The key of a plan file's content: the loader reads `.json` files as JSON."""
    return digest("plan", "json" if os.fspath(filename).lower().endswith(".json") else "yaml", raw)


def packs_key(directories: list[str], fact_fields: Any) -> str | None:
    """The key of a set of rule pack directories: every file below them, path and bytes (so
    that a new, removed or renamed file counts as well as an edited one), and the catalogue of
    facts (fields and types) they are checked against. None when a directory cannot be read (the loader says why)."""
    parts: list[str | bytes] = ["packs", repr(sorted((k, sorted(v.items())) for k, v in fact_fields.items()))]
    for directory in directories:
        parts.append(directory)
        try:
            walk = sorted(os.walk(directory))
        except OSError:
            return None
        if not walk:
            return None
        for folder, _, files in walk:
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:  # a FIFO or a huge file: no key, and the pack loader says what is wrong
                    parts += [path, read_regular_file(path, _MAX_PACK_FILE_BYTES)]
                except OSError:
                    return None
    return digest(*parts)


# ---- rule packs and compiled rules ----------------------------------------------------------

# id(pack) -> (pack, key of the load that made it): what the compiled rules' key is made of.
# The pack is held so that its id is never reused for another object.
_pack_keys: dict[int, tuple[Any, str]] = {}


def load_packs(cache: Cache | None, dirs, include_builtin: bool = True) -> list:
    """`rulepack.load_packs`, from the cache when the pack files are unchanged."""
    from ssm_rules.facts import FACT_FIELDS
    from ssm_rules.rulepack import builtin_pack_dir
    from ssm_rules.rulepack import load_packs as load

    if cache is None:
        return load(list(dirs), include_builtin)
    directories = ([str(builtin_pack_dir())] if include_builtin else []) + [os.fspath(d) for d in dirs]
    key = packs_key(directories, FACT_FIELDS)
    packs = cache.get("packs", key) if key is not None else None
    if not isinstance(packs, list):
        packs = load(list(dirs), include_builtin)  # raises RulePackError for a broken pack: never kept
        if key is not None:
            cache.put("packs", key, packs)
    if key is not None:
        for index, pack in enumerate(packs):
            _pack_keys[id(pack)] = (pack, f"{key}:{index}")
    return packs


def compiled_key(packs, settings, severity, selected) -> str | None:
    """The key of compiling `packs` with these options; None when a pack was not loaded from
    files through `load_packs` above (built in memory: nothing to key it by)."""
    keys = []
    for pack in packs:
        known = _pack_keys.get(id(pack))
        if known is None or known[0] is not pack:
            return None
        keys.append(known[1])
    options = repr((sorted((settings or {}).items()), sorted((severity or {}).items()),
                    None if selected is None else sorted(selected)))
    return digest("compiled", *keys, options)


def compile_packs(cache: Cache | None, packs, settings=None, severity=None, selected=None):
    """`compiler.compile_packs`, from the cache when the packs and the options are unchanged.
    Returns (compiled rules, their key or None)."""
    from ssm_rules.compiler import CompiledRules
    from ssm_rules.compiler import compile_packs as compile_

    key = compiled_key(packs, settings, severity, selected) if cache is not None else None
    compiled = cache.get("compiled", key) if key is not None else None
    if not isinstance(compiled, CompiledRules):  # (a cached copy holds equal copies of the packs)
        compiled = compile_(packs, settings=settings, severity_overrides=severity, selected=selected)
        if key is not None:
            cache.put("compiled", key, compiled)
    return compiled, key

