"""The catalogue of named models: ``pretrained/zoo.json`` (shipped and official) plus the user's zoo."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cyclegan_cli.errors import CheckpointError, DownloadError, NotFoundError
from cyclegan_cli.zoo import paths

MANIFEST = "zoo.json"


@dataclass
class ZooEntry:
    name: str
    kind: str = "cyclegan"  # cyclegan | cut | pix2pix | dcgan | features | alias
    file: str | None = None  # a checkpoint shipped under pretrained/ (folder or file)
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    format: str = "checkpoint"  # checkpoint | official-pth
    license: str = ""
    source: str = ""
    domains: list[str] = field(default_factory=list)
    input_size: int | None = None
    aliases: list[str] = field(default_factory=list)
    description: str = ""
    sha256_prefix: str | None = None  # when no full sha256 is published: the start of it (torch.hub file names)
    origin: str = "catalogue"  # catalogue | user
    path: str | None = None  # user entries: the checkpoint folder
    # an alias entry (kind "alias") is a name for another entry, chosen by a benchmark: e.g. photo2sketch,
    # the photo -> sketch model that benchmarks/quality.py scores best
    alias_of: str | None = None
    chosen_by: str = ""  # what chose alias_of
    previously: str | None = None  # the entry this name meant before (its shipped folder was named after it)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def load_manifest(folder: Path | None = None) -> dict[str, ZooEntry]:
    folder = folder or paths.pretrained_dir()
    file = folder / MANIFEST
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{file}: unreadable manifest ({exc})") from None
    out = {}
    for name, spec in data.get("models", {}).items():
        out[name] = ZooEntry(name=name, **spec)
    return out


def follow(entry: ZooEntry, manifest: dict[str, ZooEntry] | None = None) -> ZooEntry:
    """The entry an alias entry names (itself for any other entry)."""
    if not entry.alias_of:
        return entry
    target = (manifest if manifest is not None else load_manifest()).get(entry.alias_of)
    if target is None or target.alias_of:
        raise CheckpointError(f"zoo name {entry.name} is an alias of {entry.alias_of!r}, which the manifest "
                              "does not list as a model")
    return target


def moved_folder(path: Path) -> Path | None:
    """Where a shipped folder that is gone now lives: ``pretrained/NAME``, where NAME is an alias
    entry whose name once named a shipped model (its ``previously``), is that model's folder now."""
    pretrained = paths.pretrained_dir()
    if path.parent.resolve() != pretrained.resolve():
        return None
    manifest = load_manifest(pretrained)
    entry = manifest.get(path.name)
    if entry is None or not entry.previously or entry.previously not in manifest:
        return None
    was = manifest[entry.previously]
    return pretrained / was.file if was.file and (pretrained / was.file).exists() else None


def user_entries() -> dict[str, ZooEntry]:
    root = paths.user_zoo_dir()
    out = {}
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not (d / "config.json").is_file():
            continue
        meta = {}
        if (d / "entry.json").is_file():
            try:
                meta = json.loads((d / "entry.json").read_text())
            except ValueError:
                meta = {}
        cfg = json.loads((d / "config.json").read_text())
        out[d.name] = ZooEntry(name=d.name, kind=cfg.get("kind", "cyclegan"), origin="user", path=str(d),
                               domains=cfg.get("domains", []), source=meta.get("source", cfg.get("source", "")),
                               license=meta.get("license", ""), aliases=meta.get("aliases", []),
                               description=meta.get("description", ""))
    return out


def pins_file() -> Path:
    return paths.ganctl_home() / "pins.json"


def pinned_sha(name: str) -> str | None:
    f = pins_file()
    if f.is_file():
        try:
            return json.loads(f.read_text()).get(name)
        except ValueError:
            return None
    return None


def pin_sha(name: str, digest: str) -> None:
    from cyclegan_cli.files import atomic_write_bytes

    f = pins_file()
    data = {}
    if f.is_file():
        try:
            data = json.loads(f.read_text())
        except ValueError:
            data = {}
    data[name] = digest
    atomic_write_bytes(f, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def cached_checkpoint(entry: ZooEntry) -> Path:
    """Where a downloaded catalogue model lives once converted to the checkpoint format."""
    return paths.cache_home() / "models" / entry.name


def materialize(entry: ZooEntry, offline: bool = False, on_progress=None) -> Path:
    """A local checkpoint path for ``entry``, downloading and converting it if needed."""
    if entry.origin == "user":
        return Path(entry.path)
    if entry.alias_of:
        return materialize(follow(entry), offline, on_progress)
    if entry.file:
        p = paths.pretrained_dir() / entry.file
        if not p.exists():
            raise NotFoundError(f"zoo model {entry.name}: shipped file {p} is missing")
        return p
    if not entry.url:
        raise CheckpointError(f"zoo model {entry.name}: the manifest gives neither a file nor a url")
    if entry.kind == "features":  # a feature network's weights: used as downloaded
        return fetch_raw(entry, offline, on_progress)
    target = cached_checkpoint(entry)
    if (target / "config.json").is_file():
        return target
    convert_into_cache(entry, fetch_raw(entry, offline, on_progress), target)
    return target


def raw_path(entry: ZooEntry) -> Path:
    return paths.cache_home() / "downloads" / Path(entry.url).name


def check_prefix(entry: ZooEntry, digest: str) -> None:
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
        raise DownloadError(f"{entry.name}: sha256 {digest[:16]}... does not start with the published "
                            f"{entry.sha256_prefix}: not the expected file")


def fetch_raw(entry: ZooEntry, offline: bool = False, on_progress=None) -> Path:
    """The downloaded file itself (verified, cached, sha256 pinned at first download, checked
    against a published sha256 prefix when there is one)."""
    from cyclegan_cli.zoo.download import download, sha256_file

    raw = raw_path(entry)
    expected = entry.sha256 or pinned_sha(entry.name)
    if raw.is_file() and expected and sha256_file(raw) == expected:
        return raw
    if offline or paths.offline():
        hint = f"on a connected machine run: ganctl zoo download {entry.name}"
        if entry.kind == "features":
            hint += f"; or copy the file here and run: ganctl zoo import FILE --name {entry.name}"
        raise DownloadError(f"zoo model {entry.name} is not in the cache and downloads are off "
                            "(--offline/GANCTL_OFFLINE)", hint=hint)
    download(entry.url, raw, sha256=expected, size=entry.size, on_progress=on_progress)
    if expected is None:
        digest = sha256_file(raw)
        try:
            check_prefix(entry, digest)
        except DownloadError:
            raw.unlink()
            raise
        pin_sha(entry.name, digest)
    return raw


def import_raw(entry: ZooEntry, file: Path) -> Path:
    """Put a file fetched elsewhere where :func:`fetch_raw` keeps it, after the same checks."""
    import shutil as _shutil

    from cyclegan_cli.files import replacing
    from cyclegan_cli.zoo.download import sha256_file

    digest = sha256_file(file)
    expected = entry.sha256 or pinned_sha(entry.name)
    if expected and digest != expected:
        raise DownloadError(f"{file}: sha256 {digest[:16]}... is not {entry.name}'s {expected[:16]}...")
    check_prefix(entry, digest)
    raw = raw_path(entry)
    with replacing(raw) as tmp:
        _shutil.copyfile(file, tmp)
    if not expected:
        pin_sha(entry.name, digest)
    return raw


def convert_into_cache(entry: ZooEntry, raw: Path, target: Path) -> None:
    import dataclasses

    from cyclegan_cli.checkpoints import TRANSLATION_KINDS, load_model, save_checkpoint

    model = load_model(raw)
    kind = entry.kind if entry.kind in TRANSLATION_KINDS and model.config.kind != "dcgan" else model.config.kind
    config = dataclasses.replace(model.config, kind=kind, domains=entry.domains or model.config.domains,
                                 source=entry.url or str(raw))
    save_checkpoint(target, config, model.nets)


def remove_user(name: str) -> Path:
    d = paths.user_zoo_dir() / name
    if not d.is_dir():
        raise NotFoundError(f"no model {name!r} in your zoo")
    shutil.rmtree(d)
    return d
