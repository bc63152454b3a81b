"""Probe registry: name → probe class, from the ``envprobe.probes`` entry points, loaded lazily.

Built-in probes register exactly like third-party ones. A checklist may add site-specific probes from a
local folder (``probe_paths``). Two different probes claiming one name are refused (the name becomes
unusable, with a message naming both), and unknown names get a did-you-mean.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

from envprobe.probes.base import Probe
from envprobe.record import record

GROUP = "envprobe.probes"


class RegistryError(Exception):
    pass


def did_you_mean(name: str, choices: list[str] | set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else ""


@record(frozen=True)
class EntryPoint:
    name: str
    value: str  # "module:attr"
    dist: str

    def load(self) -> object:
        module, _, attr = self.value.partition(":")
        obj: object = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr.strip() else []:
            obj = getattr(obj, part)
        return obj


_DIST_DIR = re.compile(r"^(?P<name>[^-]+)(?:-[^-]*)?\.(?:dist-info|egg-info)$")


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` from every installed distribution, as importlib.metadata finds them.

    Reads ``entry_points.txt`` of each ``*.dist-info`` / ``*.egg-info`` on ``sys.path`` directly: the same files
    and the same rule (the first distribution of a name on sys.path wins), without importing
    importlib.metadata and parsing every distribution's METADATA — that costs ~20 ms per start-up.
    """
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for dirname in names:
            m = _DIST_DIR.match(dirname)
            if not m:
                continue
            dist = m.group("name").lower().replace("-", "_").replace(".", "_")
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry or ".", dirname, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            found.extend(EntryPoint(n, v, dist) for n, v in _parse_section(text, group))
    return found


def _parse_section(text: str, group: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.split("[", 1)[0].strip()))  # drop "[extras]"
    return out


class Registry:
    def __init__(self, group: str = GROUP):
        self._eps: dict[str, EntryPoint] = {}
        self._conflicts: dict[str, list[str]] = {}
        self._loaded: dict[str, type[Probe]] = {}
        self._origin: dict[str, str] = {}
        for ep in entry_points(group):
            prev = self._eps.get(ep.name)
            if prev is not None and prev.value != ep.value:
                self._conflicts.setdefault(ep.name, [prev.value]).append(ep.value)
                continue
            self._eps[ep.name] = ep
            self._origin[ep.name] = ep.value

    def names(self) -> list[str]:
        return sorted(set(self._eps) | set(self._loaded))

    def origin(self, name: str) -> str:
        return self._origin.get(name, "")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._eps or name in self._loaded)

    def get(self, name: str) -> type[Probe]:
        if name in self._conflicts:
            raise RegistryError(
                f"probe name {name!r} is claimed by several plugins ({', '.join(self._conflicts[name])}); "
                "uninstall one of them"
            )
        if name in self._loaded:
            return self._loaded[name]
        ep = self._eps.get(name)
        if ep is None:
            hint = did_you_mean(name, self.names())
            raise RegistryError(f"unknown probe {name!r}" + (f"; did you mean {hint}?" if hint else ""))
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not kill the scan; it is reported by name
            raise RegistryError(f"probe {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from exc
        probe = self._validate(name, cls, ep.value)
        self._loaded[name] = probe
        return probe

    def _validate(self, name: str, cls: object, origin: str) -> type[Probe]:
        if not (isinstance(cls, type) and issubclass(cls, Probe)):
            raise RegistryError(f"probe {name!r} ({origin}) is not a subclass of envprobe.probes.Probe")
        if cls.name != name:
            raise RegistryError(f"probe {origin} is registered as {name!r} but names itself {cls.name!r}")
        return cls

    def add_path(self, folder: Path) -> list[str]:
        """Load every ``*.py`` in ``folder`` and register the Probe subclasses it defines. Returns their names."""
        if not folder.is_dir():
            raise RegistryError(f"probe path {folder} is not a directory")
        added: list[str] = []
        for path in sorted(folder.glob("*.py")):
            modname = f"envprobe_local_probes.{path.parent.name}.{path.stem}"
            spec = importlib.util.spec_from_file_location(modname, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise RegistryError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, Probe) and obj is not Probe and obj.name:
                    if obj.__module__ != modname:
                        continue  # imported from elsewhere, not defined here
                    if obj.name in self and self._loaded.get(obj.name) is not obj:
                        where = self._origin.get(obj.name, "?")
                        raise RegistryError(f"{path}: probe {obj.name!r} is already provided by {where}")
                    self._loaded[obj.name] = obj
                    self._origin[obj.name] = str(path)
                    added.append(obj.name)
        return added


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = Registry()
    return _default
