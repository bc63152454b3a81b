"""Checklist loading: YAML → validated plan. Every problem names file, line, column and field.

Stages: parse YAML keeping node positions (duplicate keys refused) → validate the document's shape
(envprobe.schema) → render templates (sandboxed jinja2, StrictUndefined) and ``${env:NAME}`` secrets → resolve each
check's probe (did-you-mean), validate its parameters and expectations against the probe's declared fields →
check ``needs`` (known ids, no cycles).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from envprobe import expect as expectmod
from envprobe.conditions import (
    Condition,
    ConsistencyRule,
    Deferred,
    FactRef,
    dig,
    split_condition,
    template_refs,
)
from envprobe.errors import ConfigError, Problem, read_utf8
from envprobe.model import Severity, Text
from envprobe.probes.base import Probe
from envprobe.record import field, record
from envprobe.registry import Registry, RegistryError, did_you_mean
from envprobe.schema import Field, Model, ValidationError, field_validator
from envprobe.secrets import Masker, substitute_env

Path_ = tuple[Any, ...]


# -- YAML with positions -------------------------------------------------------------------------------
_Loader: type[Any] = expectmod.YamlLoader  # safe; floats keep their source text (version: 2.10)


def _fmt_path(path: Path_) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


class YamlDoc:
    """A parsed YAML document plus the (line, column) of every value and key, by path."""

    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.key_positions: dict[Path_, tuple[int, int]] = {}
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            self.problems: list[Problem] = []
            if node is None:
                self.data: Any = None
                return
            self._walk(node, (), loader)
            if self.problems:
                raise ConfigError(self.problems)
            self.data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            col = mark.column + 1 if mark else None
            what = " ".join(x for x in (exc.context, exc.problem) if x)
            raise ConfigError(
                [Problem(filename, line, col, "", f"YAML syntax error: {what}; check indentation and quoting")]
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError([Problem(filename, None, None, "", f"YAML error: {exc}")]) from None
        finally:
            loader.dispose()

    def _walk(self, node: yaml.Node, path: Path_, loader: Any) -> None:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for knode, vnode in node.value:
                try:
                    key = loader.construct_object(knode, deep=True)
                except yaml.YAMLError:
                    key = getattr(knode, "value", "?")
                if isinstance(key, (list, dict)):
                    key = str(key)
                kline = knode.start_mark.line + 1
                if key in seen and key != "<<":
                    self.problems.append(
                        Problem(self.filename, kline, knode.start_mark.column + 1, _fmt_path((*path, key)),
                                f"duplicate key (first defined on line {seen[key]}); keep one")
                    )
                seen.setdefault(key, kline)
                self.key_positions[path + (key,)] = (kline, knode.start_mark.column + 1)
                self._walk(vnode, (*path, key), loader)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i), loader)

    def where(self, path: Path_, key: bool = False) -> tuple[int | None, int | None]:
        """Position of ``path``; for an unknown key, the key itself; else the nearest known ancestor."""
        p = tuple(path)
        if key and p in self.key_positions:
            return self.key_positions[p]
        while p:
            if p in self.positions:
                return self.positions[p]
            if p in self.key_positions:
                return self.key_positions[p]
            p = p[:-1]
        return self.positions.get((), (None, None))

    def problem(self, path: Path_, message: str, key: bool = False) -> Problem:
        line, col = self.where(path, key)
        return Problem(self.filename, line, col, _fmt_path(path), message)


# -- document shape -------------------------------------------------------------------------------------
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")


def parse_duration(v: Any) -> float:
    """``10`` / ``10s`` / ``500ms`` / ``2m`` → seconds."""
    if isinstance(v, bool):
        raise ValueError("a duration is a number of seconds or a string like '10s', '500ms', '2m'")
    if isinstance(v, (int, float)):
        if v < 0:
            raise ValueError("a duration cannot be negative")
        return float(v)
    if isinstance(v, str):
        m = _DURATION.match(v)
        if m:
            n = float(m.group(1))
            return n * {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}[m.group(2)]
    raise ValueError("a duration is a number of seconds or a string like '10s', '500ms', '2m'")


class TextSpec(Model):
    zh_CN: str | None = Field(default=None, alias="zh-CN")
    en: str | None = None


class RetrySpec(Model):
    times: int = Field(ge=0, le=100, description="retries after the first attempt")
    delay: float = Field(default=1.0, description="seconds between attempts ('2s', '500ms')")

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, v: Any) -> float:
        return parse_duration(v)


class CheckSpec(Model):
    id: str = Field(description="kebab-case, unique in the checklist")
    title: str | TextSpec | None = None
    description: str | TextSpec | None = None
    probe: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    expect: dict[str, Any] = Field(default_factory=dict)
    severity: Severity = Severity.REQUIRED
    hosts: list[str] = Field(default_factory=lambda: ["local"])
    from_: str | None = Field(default=None, alias="from")
    needs: list[str] = Field(default_factory=list)
    retry: RetrySpec | None = None
    timeout: float | None = Field(default=None, description="seconds per attempt (default 10)")
    hint: str | TextSpec | None = None
    tags: list[str] = Field(default_factory=list)
    when: str | list[str] | None = Field(
        default=None, description="run only if this holds: 'os.family == linux', 'memory.total_gb > 32', "
                                  "'deploy_mode == cluster' (a list: all must hold); else skipped")
    loop: list[Any] | None = Field(default=None, description="one check per item; templates see {{ item }}")
    loop_from: str | None = Field(default=None, description="like loop, from a list variable ('ports' or "
                                                            "'vars.ports')")
    consistent: list[Any] | None = Field(
        default=None, description="fields every host must report alike ('timezone'), or {field: spread} for "
                                  "numbers ({offset_ms: '<= 500'})")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("must be kebab-case: lowercase letters, digits and single hyphens (e.g. data-disk)")
        return v

    @field_validator("hosts", "needs", "tags", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float | None:
        if v is None:
            return None
        d = parse_duration(v)
        if d <= 0:
            raise ValueError("a timeout must be greater than zero")
        return d


class ChecklistSpec(Model):
    version: Literal[1] = 1
    name: str | TextSpec = ""
    lang: Literal["zh-CN", "en"] | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    probe_paths: list[str] = Field(default_factory=list)
    checks: list[CheckSpec]


def json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The checklist's JSON Schema (for editors: yaml-language-server, VS Code ...).

    With a registry, each probe name is listed and a check's ``with`` and ``expect`` are described per probe
    (its parameters, and its observed fields as the allowed ``expect`` keys).
    """
    schema = ChecklistSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "envprobe checklist"
    if registry is None:
        return schema
    check = schema["$defs"]["CheckSpec"]
    names: list[str] = []
    rules: list[dict[str, Any]] = []
    for name in registry.names():
        try:
            cls = registry.get(name)
        except RegistryError:
            continue
        names.append(name)
        params = cls.Params.model_json_schema()
        params.pop("title", None)
        # a value may be a template or a secret reference, rendered before validation
        templated = {"type": "string", "pattern": r"\{\{|\$\{env:"}
        params["properties"] = {k: {"anyOf": [v, templated]} for k, v in params.get("properties", {}).items()}
        for sub in params.pop("$defs", {}).values():  # keep nested definitions resolvable
            schema["$defs"].setdefault(sub.get("title", name), sub)
        rules.append({
            "if": {"properties": {"probe": {"const": name}}, "required": ["probe"]},
            "then": {"properties": {
                "with": params,
                "expect": {"type": "object", "propertyNames": {"enum": list(cls.fields())}},
            }},
        })
    check["properties"]["probe"] = {"type": "string", "enum": names, "description": "the probe to run"}
    check["allOf"] = rules
    return schema


# -- the loaded plan --------------------------------------------------------------------------------------
@record
class FieldExpectation:
    field: str
    raw: Any
    expectation: expectmod.Expectation
    unit: str | None


@record
class PlannedCheck:
    id: str
    title: Text
    probe_name: str
    probe: type[Probe]
    params: Model
    expectations: list[FieldExpectation]
    severity: Severity
    hosts: list[str]
    from_: str | None
    needs: list[str]
    retries: int
    retry_delay: float
    timeout: float
    hint: Text | None
    line: int | None = None
    #: the checklist's id for this check; differs from ``id`` for the instances of a ``loop:``
    group: str = ""
    when: list[Condition] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    #: variables of this check's host (deferred templates are rendered with them and the facts)
    variables: dict[str, Any] = field(default_factory=dict)
    consistent: list[ConsistencyRule] = field(default_factory=list)
    #: the probe classes those fact references resolved to at load time (plugins from probe_paths included)
    fact_classes: dict[str, Any] = field(default_factory=dict)

    @property
    def fact_probes(self) -> list[str]:
        """Probes whose facts this check refers to (``when:``, derived expectations)."""
        names = [c.fact.probe for c in self.when if c.fact is not None]
        names += [r.probe for d in self.deferred for r in d.refs]
        return list(dict.fromkeys(names))


@record
class Plan:
    name: Text
    path: str
    lang: str | None
    checks: list[PlannedCheck]
    masker: Masker
    vars: dict[str, Any] = field(default_factory=dict)
    inventory: Any = None


DEFAULT_TIMEOUT = 10.0


def _text(v: str | TextSpec | None, fallback: str) -> Text:
    if v is None:
        return {"zh-CN": fallback, "en": fallback}
    if isinstance(v, str):
        return {"zh-CN": v, "en": v}
    zh = v.zh_CN or v.en or fallback
    en = v.en or v.zh_CN or fallback
    return {"zh-CN": zh, "en": en}


def _schema_problems(
    doc: YamlDoc, exc: ValidationError, base: Path_, allowed: dict[Path_, list[str]]
) -> list[Problem]:
    """Turn validation errors into file:line problems. Input values are never quoted (they may be secrets)."""
    problems: list[Problem] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(err["loc"])
        path = (*base, *loc)
        etype = err["type"]
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            parent = tuple(loc[:-1])
            options = allowed.get(parent) or []
            hint = did_you_mean(str(key), options)
            msg = f"unknown key {key!r}"
            msg += f"; did you mean {hint}?" if hint else ""
            if options:
                msg += f" (allowed: {', '.join(options)})"
            problems.append(doc.problem(path, msg, key=True))
        elif etype == "missing":
            problems.append(doc.problem(path[:-1], f"missing required field {loc[-1]!r}"))
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            problems.append(doc.problem(path, msg))
    # one field can fail several union members with the same words; keep each message once
    unique: dict[str, Problem] = {}
    for p in problems:
        unique.setdefault(str(p), p)
    return list(unique.values())


def _aliases(model: type[Model]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def load_text(
    text: str,
    filename: str,
    registry: Registry,
    cli_vars: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
    base_dir: Path | None = None,
    inventory: Any = None,
) -> Plan:
    environ = dict(os.environ) if environ is None else environ
    doc = YamlDoc(text, filename)
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError([doc.problem((), "a checklist is a mapping with 'version: 1' and a list of 'checks'")])
    if "version" in data and data["version"] != 1:
        raise ConfigError([doc.problem(("version",),
                                       f"unsupported version {data['version']!r}; this envprobe reads version 1")])
    if "checks" in data and not isinstance(data["checks"], list):
        raise ConfigError([doc.problem(("checks",), "must be a list of checks (each starting with '- id: ...')")])
    problems: list[Problem] = []
    top_allowed: dict[Path_, list[str]] = {(): _aliases(ChecklistSpec), ("name",): ["zh-CN", "en"]}
    raw_checks = data.get("checks")
    try:
        spec = ChecklistSpec.model_validate({**data, "checks": []} if isinstance(raw_checks, list) else data)
    except ValidationError as exc:
        problems.extend(_schema_problems(doc, exc, (), top_allowed))
        spec = ChecklistSpec(checks=[])
    # each check on its own, so one malformed check does not hide the problems of the others
    check_allowed: dict[Path_, list[str]] = {
        (): _aliases(CheckSpec), ("retry",): _aliases(RetrySpec),
        ("title",): ["zh-CN", "en"], ("hint",): ["zh-CN", "en"], ("description",): ["zh-CN", "en"],
    }
    valid_checks: list[tuple[int, CheckSpec]] = []
    for i, raw in enumerate(raw_checks if isinstance(raw_checks, list) else []):
        if not isinstance(raw, dict):
            problems.append(doc.problem(("checks", i), "each check is a mapping with at least 'id' and 'probe'"))
            continue
        try:
            valid_checks.append((i, CheckSpec.model_validate(raw)))
        except ValidationError as exc:
            problems.extend(_schema_problems(doc, exc, ("checks", i), check_allowed))
    if isinstance(raw_checks, list) and not raw_checks:
        problems.append(doc.problem(("checks",), "the checklist has no checks"))

    masker = Masker()
    variables: dict[str, Any] = dict(spec.vars)
    variables.update(cli_vars or {})
    base_dir = base_dir or Path(filename).resolve().parent

    for i, pp in enumerate(spec.probe_paths):
        folder = (base_dir / os.path.expanduser(pp)).resolve()
        try:
            registry.add_path(folder)
        except RegistryError as exc:
            problems.append(doc.problem(("probe_paths", i), str(exc)))

    inv = inventory
    seen_ids: dict[str, int] = {}
    planned_ids: set[tuple[str, str]] = set()
    checks: list[PlannedCheck] = []
    renderers: dict[str, _Renderer] = {}

    def renderer_for(host: str) -> _Renderer:
        """Variables for one host: checklist vars < inventory vars < the host's vars < --var."""
        if host not in renderers:
            scoped: dict[str, Any] = dict(spec.vars)
            if inv is not None:
                scoped.update(inv.vars)
                if host in inv.hosts:
                    scoped.update(inv.hosts[host].spec.vars)
                    scoped.setdefault("inventory_hostname", host)
            scoped.update(cli_vars or {})
            renderers[host] = _Renderer(scoped)
        return renderers[host]

    for i, c in valid_checks:
        cpath: Path_ = ("checks", i)
        line = doc.where(cpath)[0]
        if c.id in seen_ids:
            problems.append(doc.problem((*cpath, "id"),
                                        f"duplicate check id {c.id!r} (first used on line {seen_ids[c.id]})"))
            continue
        seen_ids[c.id] = line or 0
        try:
            probe_cls = registry.get(c.probe)
        except RegistryError as exc:
            problems.append(doc.problem((*cpath, "probe"), str(exc)))
            continue
        hosts = _expand_hosts(c.hosts, inv, doc, (*cpath, "hosts"), problems)
        if c.from_ is not None and not probe_cls.vantage:
            problems.append(doc.problem((*cpath, "from"), f"probe {c.probe!r} observes its own host; 'from' applies to "
                                                          "network probes (tcp, latency, dns, http, tls, port_proof)"))
        elif c.from_ not in (None, "local", "localhost") and (inv is None or c.from_ not in inv.hosts):
            hint = inv.suggest(c.from_) if inv is not None else ""
            where = "the inventory" if inv is not None else "an inventory (-i FILE)"
            problems.append(doc.problem((*cpath, "from"), f"unknown host {c.from_!r}: 'from' names one host of {where}"
                                        + (f"; did you mean {hint}?" if hint else "")))
        fields = probe_cls.fields()
        for fname in c.expect:
            if fname not in fields:
                hint = did_you_mean(str(fname), list(fields))
                msg = f"probe {c.probe!r} observes no field {fname!r}"
                msg += f"; did you mean {hint}?" if hint else ""
                msg += f" (observed fields: {', '.join(fields)})"
                problems.append(doc.problem((*cpath, "expect", fname), msg, key=True))
        if c.loop is not None and c.loop_from is not None:
            problems.append(doc.problem((*cpath, "loop_from"), "give either 'loop' or 'loop_from', not both"))
            continue
        for host in hosts:
            base = renderer_for(host)
            for check_id, renderer, label in _instances(c, cpath, base, doc, problems):
                planned = _plan_check(c, i, host, probe_cls, renderer, environ, masker, doc, problems, line,
                                      registry, check_id, label)
                if planned is None:
                    continue
                if (planned.id, host) in planned_ids:
                    problems.append(doc.problem(cpath, f"check id {planned.id!r} is used twice (a loop makes ids "
                                                       "from its items: give them distinct names)"))
                    continue
                planned_ids.add((planned.id, host))
                checks.append(planned)

    ids = {c.id for _, c in valid_checks}
    for i, c in valid_checks:
        for j, need in enumerate(c.needs):
            if need not in ids:
                hint = did_you_mean(need, ids)
                problems.append(doc.problem(("checks", i, "needs", j),
                                            f"unknown check id {need!r}" + (f"; did you mean {hint}?" if hint else "")))
            elif need == c.id:
                problems.append(doc.problem(("checks", i, "needs", j), "a check cannot need itself"))
    planned_groups = {(pc.group, pc.hosts[0]) for pc in checks}
    by_id = {spec_c.id: i for i, spec_c in valid_checks}
    for pc in checks:
        for j, need in enumerate(pc.needs):
            if need in by_id and (need, pc.hosts[0]) not in planned_groups:
                problems.append(doc.problem(("checks", by_id[pc.group], "needs", j),
                                            f"{pc.group!r} runs on {pc.hosts[0]!r} but {need!r} does not; a check can "
                                            "only need checks that run on the same hosts"))
    cycle = _find_cycle({c.id: c.needs for _, c in valid_checks})
    if cycle:
        idx = next(i for i, c in valid_checks if c.id == cycle[0])
        problems.append(doc.problem(("checks", idx, "needs"), "dependency cycle: " + " → ".join(cycle)))
    if problems:
        problems = list({str(p): p for p in problems}.values())  # per-host rendering repeats a problem
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise ConfigError([_masked_problem(p, masker) for p in problems])

    name = _text(spec.name, Path(filename).stem)
    return Plan(name=name, path=filename, lang=spec.lang, checks=checks, masker=masker, vars=variables)


def _masked_problem(p: Problem, masker: Masker) -> Problem:
    return Problem(p.file, p.line, p.column, p.field, masker.text(p.message))


def _expand_hosts(patterns: list[str], inv: Any, doc: YamlDoc, path: Path_, problems: list[Problem]) -> list[str]:
    """A check's ``hosts:`` (names, groups, globs, ``all``, ``local``) → concrete host names."""
    out: list[str] = []
    for j, pat in enumerate(patterns):
        if pat in ("local", "localhost"):
            out.append("local")
            continue
        found = inv.resolve(pat) if inv is not None else []
        if not found:
            if inv is None:
                problems.append(doc.problem((*path, j), f"unknown host {pat!r}: without an inventory (-i FILE) only "
                                                        "'local' is available"))
            else:
                hint = inv.suggest(pat)
                problems.append(doc.problem((*path, j), f"unknown host or group {pat!r} in {inv.path}"
                                                        + (f"; did you mean {hint}?" if hint else "")))
            continue
        out.extend(found)
    return list(dict.fromkeys(out))


def _vantage(from_: str | None, host: str) -> str | None:
    """The ``from:`` host of a check on ``host``; None when it is the host itself."""
    if from_ in ("local", "localhost"):
        from_ = "local"
    return None if from_ is None or from_ == host else from_


_SLUG = re.compile(r"[^a-z0-9]+")


def _item_label(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in ("id", "name", "port", "path", "key"):
            if isinstance(item.get(key), (str, int, float)) and not isinstance(item.get(key), bool):
                return str(item[key])
        return str(index + 1)
    if isinstance(item, (list, tuple)):
        return str(index + 1)
    return str(item)


def _instances(c: CheckSpec, cpath: Path_, base: _Renderer, doc: YamlDoc,
               problems: list[Problem]) -> list[tuple[str, _Renderer, str | None]]:
    """(check id, renderer, loop label) per instance: one without a loop, one per item with ``loop:``."""
    if c.loop is None and c.loop_from is None:
        return [(c.id, base, None)]
    if c.loop is not None:
        items: Any = c.loop
    else:
        name = str(c.loop_from).strip()
        path = name.split(".")
        if path[0] == "vars" and len(path) > 1 and "vars" not in base.variables:
            path = path[1:]
        found, items = dig(base.variables, path)
        if not found:
            known = ", ".join(sorted(base.variables)) or "none"
            problems.append(doc.problem((*cpath, "loop_from"), f"variable {name!r} is not defined (variables: "
                                                               f"{known})"))
            return []
        if isinstance(items, dict):
            items = [{"key": k, "value": v} for k, v in items.items()]
        if not isinstance(items, list):
            problems.append(doc.problem((*cpath, "loop_from"), f"variable {name!r} is a {type(items).__name__}; "
                                                               "loop_from needs a list"))
            return []
    if not items:
        problems.append(doc.problem((*cpath, "loop" if c.loop is not None else "loop_from"),
                                    "the loop has no items: nothing would be checked"))
        return []
    out: list[tuple[str, _Renderer, str | None]] = []
    used: set[str] = set()
    for n, item in enumerate(items):
        label = _item_label(item, n)
        slug = _SLUG.sub("-", label.lower()).strip("-") or str(n + 1)
        cid = f"{c.id}-{slug}"
        if cid in used:
            cid = f"{c.id}-{slug}-{n + 1}"
        used.add(cid)
        out.append((cid, _Renderer({**base.variables, "item": item, "loop_index": n + 1}), label))
    return out


def _fact_probe(name: str, variables: dict[str, Any], registry: Registry | None) -> type[Probe] | None:
    """The probe ``name`` refers to in a template or condition: one whose parameters all have defaults, and
    only when no variable has that name."""
    if registry is None or name in variables or name not in registry:
        return None
    try:
        cls = registry.get(name)
        cls.Params.model_validate({})
    except (RegistryError, ValidationError):
        return None
    return cls


def _fact_refs(value: Any, variables: dict[str, Any], registry: Registry | None, doc: YamlDoc, path: Path_,
               problems: list[Problem]) -> list[FactRef] | None:
    """Fact references in an expectation (a string, or strings in a list/mapping); None when there are none."""
    texts: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str) and "{" in v:
            texts.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    refs: list[FactRef] = []
    for text in texts:
        for name, attr in template_refs(text):
            cls = _fact_probe(name, variables, registry)
            if cls is None:
                continue
            fields = cls.fields()
            if attr not in fields:
                hint = did_you_mean(attr, list(fields))
                problems.append(doc.problem(path, f"probe {name!r} observes no field {attr!r}"
                                                  + (f"; did you mean {hint}?" if hint else "")
                                                  + f" (fields: {', '.join(fields)})"))
                continue
            refs.append(FactRef(name, attr))
    return list(dict.fromkeys(refs)) or None


def _conditions(c: CheckSpec, cpath: Path_, variables: dict[str, Any], registry: Registry | None, doc: YamlDoc,
                problems: list[Problem]) -> list[Condition]:
    if c.when is None:
        return []
    texts = [c.when] if isinstance(c.when, str) else list(c.when)
    out: list[Condition] = []
    for n, text in enumerate(texts):
        where: Path_ = (*cpath, "when") if isinstance(c.when, str) else (*cpath, "when", n)
        parts = split_condition(text) if isinstance(text, str) else None
        if parts is None:
            problems.append(doc.problem(where, "a condition is NAME [EXPECTATION]: 'os.family == linux', "
                                               "'memory.total_gb > 32', 'deploy_mode == cluster'"))
            continue
        path, rest = parts
        fact: FactRef | None = None
        value: Any = None
        unit: str | None = None
        if path[0] == "vars" and len(path) > 1 and path[1] in variables:
            path = path[1:]
        if path[0] in variables:
            found, value = dig(variables, path)
            if not found:
                problems.append(doc.problem(where, f"variable {'.'.join(path)!r} is not defined"))
                continue
        else:
            cls = _fact_probe(path[0], variables, registry)
            if cls is None:
                known = sorted(variables)
                problems.append(doc.problem(where, f"unknown name {path[0]!r}: not a variable"
                                                   + (f" ({', '.join(known)})" if known else "")
                                                   + ", nor a probe that runs without parameters (os, cpu, memory, "
                                                     "time, locale, selinux …)"))
                continue
            fields = cls.fields()
            if len(path) < 2 or path[1] not in fields:
                got = path[1] if len(path) > 1 else ""
                hint = did_you_mean(got, list(fields)) if got else ""
                problems.append(doc.problem(where, f"name a field of {path[0]!r}: {path[0]}.FIELD"
                                                   + (f"; did you mean {path[0]}.{hint}?" if hint else "")
                                                   + f" (fields: {', '.join(fields)})"))
                continue
            fact = FactRef(path[0], path[1])
            unit = field_unit(cls, path[1])
        expectation = None
        if rest:
            try:
                expectation = expectmod.parse(rest, unit, where=f"when {text!r}")
            except expectmod.ExpectSyntaxError as exc:
                problems.append(doc.problem(where, str(exc)))
                continue
        out.append(Condition(text=text.strip(), fact=fact, path=path, value=value, expectation=expectation,
                             unit=unit))
    return out


def _consistency(c: CheckSpec, cpath: Path_, probe_cls: type[Probe], doc: YamlDoc,
                 problems: list[Problem]) -> list[ConsistencyRule]:
    rules: list[ConsistencyRule] = []
    fields = probe_cls.fields()
    for n, entry in enumerate(c.consistent or []):
        where: Path_ = (*cpath, "consistent", n)
        if isinstance(entry, str):
            name, spread_spec = entry, None
        elif isinstance(entry, dict) and len(entry) == 1:
            name, spread_spec = next(iter(entry.items()))
        else:
            problems.append(doc.problem(where, "each entry is a field name ('timezone') or {field: spread} "
                                               "({offset_ms: '<= 500'})"))
            continue
        if name not in fields:
            hint = did_you_mean(str(name), list(fields))
            problems.append(doc.problem(where, f"probe {c.probe!r} observes no field {name!r}"
                                               + (f"; did you mean {hint}?" if hint else "")))
            continue
        unit = field_unit(probe_cls, name)
        spread = None
        if spread_spec is not None:
            try:
                spread = expectmod.parse(spread_spec, unit, where=f"consistent.{name}")
            except expectmod.ExpectSyntaxError as exc:
                problems.append(doc.problem(where, str(exc)))
                continue
        rules.append(ConsistencyRule(field=name, spread=spread, unit=unit))
    return rules


def _plan_check(
    c: CheckSpec, i: int, host: str, probe_cls: type[Probe], renderer: _Renderer, environ: dict[str, str],
    masker: Masker, doc: YamlDoc, problems: list[Problem], line: int | None,
    registry: Registry | None = None, check_id: str | None = None, label: str | None = None,
) -> PlannedCheck | None:
    """One check for one host: parameters and expectations rendered with that host's variables."""
    cpath: Path_ = ("checks", i)

    def render(value: Any, path: Path_) -> Any:
        return _render_tree(value, path, renderer, environ, masker, doc, problems)

    raw_params = render(c.with_, (*cpath, "with"))
    try:
        params = probe_cls.Params.model_validate(raw_params)
    except ValidationError as exc:
        allowed = {(): list(probe_cls.Params.model_fields)}
        problems.extend(_schema_problems(doc, exc, (*cpath, "with"), allowed))
        return None
    fields = probe_cls.fields()
    exps: list[FieldExpectation] = []
    deferred: list[Deferred] = []
    ok = True
    for fname, rawspec in c.expect.items():
        if fname not in fields:
            ok = False
            continue
        fpath = (*cpath, "expect", fname)
        unit = field_unit(probe_cls, fname)
        refs = _fact_refs(rawspec, renderer.variables, registry, doc, fpath, problems)
        if refs is not None:
            deferred.append(Deferred(field=fname, template=rawspec, unit=unit, refs=refs))
            continue
        rendered = render(rawspec, fpath)
        try:
            exp = expectmod.parse(rendered, unit, where=f"{c.probe}.{fname}")
        except expectmod.ExpectSyntaxError as exc:
            problems.append(doc.problem(fpath, str(exc)))
            ok = False
            continue
        exps.append(FieldExpectation(fname, masker.mask(rendered), exp, unit))
    if not ok:
        return None
    when = _conditions(c, cpath, renderer.variables, registry, doc, problems)
    rules = _consistency(c, cpath, probe_cls, doc, problems)
    fact_names = {w.fact.probe for w in when if w.fact is not None} | {r.probe for d in deferred for r in d.refs}
    fact_classes = {n: registry.get(n) for n in sorted(fact_names)} if registry is not None else {}
    title = _text(c.title, c.id)
    if label is not None and not any("item" in str(v) for v in (title.values())):
        title = {k: f"{v} [{label}]" for k, v in title.items()}
    title = {k: _render_plain(v, renderer, doc, (*cpath, "title"), problems) for k, v in title.items()}
    return PlannedCheck(
        id=check_id or c.id,
        group=c.id,
        when=when,
        deferred=deferred,
        variables=renderer.variables if deferred else {},
        consistent=rules,
        fact_classes=fact_classes,
        title=title,
        probe_name=c.probe,
        probe=probe_cls,
        params=params,
        expectations=exps,
        severity=c.severity,
        hosts=[host],
        from_=_vantage(c.from_, host),
        needs=c.needs,
        retries=c.retry.times if c.retry else 0,
        retry_delay=c.retry.delay if c.retry else 0.0,
        timeout=c.timeout or DEFAULT_TIMEOUT,
        hint=_text(c.hint, "") if c.hint else None,
        line=line,
    )


def field_unit(probe: type[Probe], fname: str) -> str | None:
    info = probe.Facts.model_fields.get(fname)
    extra = info.json_schema_extra if info is not None else None
    if isinstance(extra, dict) and "unit" in extra:
        u = extra["unit"]
        return str(u) if u else None
    return expectmod.unit_for_field(fname)


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if m not in graph or m == n:
                continue
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if state.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# -- templating -----------------------------------------------------------------------------------------
_WHOLE_REF = re.compile(r"^\s*\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}\s*$")
_SIMPLE_REF = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY_TEMPLATE = re.compile(r"\{\{|\{%|\{#")


class _Renderer:
    def __init__(self, variables: dict[str, Any]):
        self.variables = variables
        self._env: Any = None

    def render(self, s: str) -> str:
        # Fast path: only plain `{{ name }}` references to defined scalar variables. jinja2 would render
        # them the same way (str of the value); anything else (filters, expressions, undefined names,
        # statements) goes to the sandboxed jinja2, which also gives the error messages.
        rest = _SIMPLE_REF.sub("", s)
        if not _ANY_TEMPLATE.search(rest):
            names = _SIMPLE_REF.findall(s)
            if all(isinstance(self.variables.get(n), (str, int, float)) and not isinstance(self.variables.get(n), bool)
                   for n in names):
                return _SIMPLE_REF.sub(lambda m: str(self.variables[m.group(1)]), s)
        if self._env is None:
            from jinja2 import StrictUndefined
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            self._env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        return str(self._env.from_string(s).render(self.variables))


def render_with_facts(template: Any, variables: dict[str, Any]) -> str | Any:
    """Render a deferred expectation (a string, or strings in a list/mapping) with the host's variables and the
    facts it refers to (``{{ memory.total_gb * 0.5 }}``). Raises on an undefined name or a bad expression."""
    if isinstance(template, dict):
        return {k: render_with_facts(v, variables) for k, v in template.items()}
    if isinstance(template, list):
        return [render_with_facts(v, variables) for v in template]
    if not isinstance(template, str):
        return template
    return _Renderer(variables).render(template)


def _render_plain(s: str, renderer: _Renderer, doc: YamlDoc, path: Path_, problems: list[Problem]) -> str:
    if "{{" not in s and "{%" not in s:
        return s
    try:
        return renderer.render(s)
    except Exception as exc:  # jinja2 raises many types: undefined, syntax, security
        problems.append(doc.problem(path, f"template error: {_jinja_msg(exc)}"))
        return s


def _jinja_msg(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "UndefinedError":
        return f"{exc} (define it under 'vars:' or pass --var NAME=VALUE)"
    return f"{name}: {exc}"


def _render_tree(
    value: Any, path: Path_, renderer: _Renderer, environ: dict[str, str], masker: Masker,
    doc: YamlDoc, problems: list[Problem],
) -> Any:
    if isinstance(value, dict):
        return {k: _render_tree(v, (*path, k), renderer, environ, masker, doc, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, (*path, i), renderer, environ, masker, doc, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    whole = _WHOLE_REF.match(value)
    if whole:  # "{{ item.any_of }}" naming a list or mapping keeps its type (a string could not be a list)
        found, native = dig(renderer.variables, whole.group(1).split("."))
        if found and isinstance(native, (list, dict)):
            return _render_tree(native, path, _Renderer({}), environ, masker, doc, problems)
    out = _render_plain(value, renderer, doc, path, problems)
    if "${env:" in out:
        out, missing = substitute_env(out, environ, masker)
        for name in missing:
            problems.append(doc.problem(path, f"environment variable {name} is not set (needed by ${{env:{name}}}); "
                                              f"export it before running envprobe"))
        if not missing and "${env:" in out:
            problems.append(doc.problem(path, "malformed ${env:NAME} reference: NAME is letters, digits and _"))
    return out


def load_file(
    path: str | Path,
    registry: Registry,
    cli_vars: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
    inventory: Any = None,
) -> Plan:
    p = Path(path)
    text = read_utf8(p)
    return load_text(text, str(path), registry, cli_vars, environ, base_dir=p.resolve().parent, inventory=inventory)
