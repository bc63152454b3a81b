"""Command line. The only module that prints, prompts or exits.

Every command runs in-process against an :class:`Environment` (streams, tty-ness, environment variables), so
tests call :func:`main` with their own environment and read the exit code and the captured output.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import click

from envprobe import __version__
from envprobe.record import field, record

# Exit codes (DESIGN.md §3)
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130


@record
class Environment:
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdout_isatty: bool | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    color: bool | None = None  # None: decide from tty and NO_COLOR

    def __post_init__(self) -> None:
        if self.stdout_isatty is None:
            try:
                self.stdout_isatty = self.stdout.isatty()
            except (AttributeError, ValueError):
                self.stdout_isatty = False
        if self.color is None:
            self.color = bool(self.stdout_isatty) and "NO_COLOR" not in self.environ

    def console(self, stderr: bool = False) -> Any:
        from rich.console import Console

        return Console(
            file=self.stderr if stderr else self.stdout,
            force_terminal=bool(self.color),
            no_color=not self.color,
            highlight=False,
            soft_wrap=False,
            width=None if self.stdout_isatty else 120,
        )


class UsageError(Exception):
    """A problem with the command line or the input files. Nothing ran."""


def _env(ctx: click.Context) -> Environment:
    obj = ctx.find_root().obj
    assert isinstance(obj, Environment)
    return obj


def _err(env: Environment, text: str) -> None:
    env.stderr.write(text.rstrip("\n") + "\n")
    env.stderr.flush()


def _parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        if "=" not in p or not p.split("=", 1)[0].strip():
            raise UsageError(f"--var {p!r}: expected NAME=VALUE")
        k, v = p.split("=", 1)
        out[k.strip()] = v
    return out


def _lang(option: str | None, plan_lang: str | None) -> str:
    return option or plan_lang or "zh-CN"


def _write_atomic(path: str, text: str) -> None:
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise UsageError(f"cannot write {path}: folder {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _print_problems(env: Environment, problems: Sequence[Any], header: str) -> None:
    _err(env, header)
    for p in problems:
        _err(env, f"  {p}")


def exit_code_for(summary: dict[str, Any], interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if summary.get("fail"):
        return EXIT_FAIL
    if summary.get("error"):
        return EXIT_UNKNOWN
    return EXIT_OK


# -- commands --------------------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="envprobe")
def cli() -> None:
    """envprobe: environment readiness checks for on-site deployments.

    \b
    envprobe scan CHECKLIST --html report.html   run a checklist on this machine
    envprobe validate CHECKLIST                   check a checklist without running it
    envprobe probes [NAME]                        list probes, or describe one
    envprobe report RESULT.json --html F          re-render a report offline
    """


class _UnsetSecrets(dict[str, str]):
    """The environment for `validate`: a ``${env:NAME}`` that is not set stands in as a placeholder (and is
    noted), so a checklist can be checked where its secrets are not exported."""

    PLACEHOLDER = "envprobe-secret-not-set"

    def __init__(self, environ: dict[str, str]):
        super().__init__(environ)
        self.unset: list[str] = []

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        if key not in self.unset:
            self.unset.append(key)
        return self.PLACEHOLDER


def _load_plan(env: Environment, checklist: str, var: Sequence[str], inventory_path: str | None = None,
               limit: str | None = None, environ: dict[str, str] | None = None) -> Any:
    from envprobe.errors import ConfigError
    from envprobe.loader import load_file
    from envprobe.registry import Registry

    environ = env.environ if environ is None else environ

    inventory = None
    if inventory_path:
        from envprobe import inventory as invmod

        inventory = invmod.load(inventory_path)
    plan = load_file(checklist, Registry(), cli_vars=_parse_vars(var), environ=environ, inventory=inventory)
    if inventory is not None:
        from envprobe import inventory as invmod

        problems = invmod.expand_secrets(inventory, environ, plan.masker)
        if problems:
            raise ConfigError(problems)
    if limit:
        hosts = list(dict.fromkeys(c.hosts[0] for c in plan.checks))
        keep = set(inventory.limit(hosts, limit) if inventory is not None else [])
        if "local" in [p.strip() for p in limit.replace(":", ",").split(",")]:
            keep.add("local")
        plan.checks = [c for c in plan.checks if c.hosts[0] in keep]
        if not plan.checks:
            raise UsageError(f"--limit {limit!r} matches no host of this checklist (hosts: {', '.join(hosts)})")
    plan.inventory = inventory
    return plan


def _inventory_options(fn: Any) -> Any:
    fn = click.option("-i", "--inventory", "inventory_path", metavar="FILE", type=click.Path(dir_okay=False),
                      help="Hosts to scan: envprobe YAML, or an Ansible INI/YAML inventory.")(fn)
    fn = click.option("--limit", metavar="PATTERN",
                      help="Only these hosts/groups: 'app,db01', globs 'app*', '!db01' to exclude.")(fn)
    return fn


@cli.command()
@click.argument("checklist", type=click.Path(dir_okay=False))
@click.option("--var", "var", multiple=True, metavar="NAME=VALUE", help="Set or override a checklist variable.")
@click.option("--forks", type=click.IntRange(1, 500), default=10, show_default=True,
              help="How many checks run at once.")
@click.option("--json", "json_out", metavar="FILE", help="Write the results as JSON (schema 1).")
@click.option("--junit", "junit_out", metavar="FILE", help="Write JUnit XML.")
@click.option("--html", "html_out", metavar="FILE", help="Write a self-contained HTML report.")
@click.option("--lang", type=click.Choice(["zh-CN", "en"]),
              help="Report language (default: checklist's lang, else zh-CN).")
@click.option("-q", "--quiet", is_flag=True, help="Print only what did not pass, and the verdict.")
@click.option("--debug-log", metavar="FILE",
              help="Where to write tracebacks (default ~/.cache/envprobe/last-scan.log).")
@click.option("--shell-path", is_flag=True, hidden=True, help="Collect local facts the way remote hosts are read.")
@_inventory_options
@click.option("--known-hosts", metavar="FILE",
              help="Known-hosts file to verify SSH host keys (default ~/.ssh/known_hosts).")
@click.option("--accept-new-hostkeys", is_flag=True,
              help="Record unknown host keys (trust on first use). A changed key is still refused.")
@click.option("--ask-pass", is_flag=True, help="Ask once for an SSH password for hosts without a key (never stored).")
@click.option("--ask-passphrase", is_flag=True,
              help="Ask once for the passphrase of SSH key files that have none in the inventory (never stored).")
@click.option("--ssh-config", metavar="FILE", help="SSH client config to honour (default ~/.ssh/config).")
@click.pass_context
def scan(ctx: click.Context, checklist: str, var: Sequence[str], forks: int, json_out: str | None,
         junit_out: str | None, html_out: str | None, lang: str | None, quiet: bool, debug_log: str | None,
         shell_path: bool, inventory_path: str | None, limit: str | None, known_hosts: str | None,
         accept_new_hostkeys: bool, ask_pass: bool, ask_passphrase: bool, ssh_config: str | None) -> int:
    """Run CHECKLIST and report. Exit 0 ready, 1 a check failed, 2 bad input, 3 readiness unknown, 130 interrupted."""
    env = _env(ctx)
    plan = _load_plan(env, checklist, var, inventory_path, limit)
    for out in (json_out, junit_out, html_out):
        if out and not Path(out).resolve().parent.is_dir():
            raise UsageError(f"cannot write {out}: folder {Path(out).resolve().parent} does not exist")
    from envprobe.debuglog import DebugLog, default_path

    dlog = DebugLog(debug_log or default_path(), plan.masker)
    from envprobe.reports import console as rconsole
    from envprobe.runner import Runner
    from envprobe.transport.local import LocalTransport

    lang = _lang(lang, plan.lang)
    # a terminal gets rich tables and a progress bar; pipes, files and CI logs get plain lines (and no
    # rich import at all, which keeps a scripted scan fast)
    console = env.console() if env.stdout_isatty else None
    progress = None if quiet or console is None else rconsole.ProgressPrinter(
        total=sum(len(c.hosts) for c in plan.checks), console=console, enabled=True
    )
    hosts = list(dict.fromkeys([c.hosts[0] for c in plan.checks] + [c.from_ for c in plan.checks if c.from_])) \
        or ["local"]
    hosts = ["local" if h == "localhost" else h for h in hosts]
    if any(h != "local" for h in hosts):
        from envprobe.transport.factory import SshOptions, build_transports

        password = None
        if ask_pass:
            password = click.prompt("SSH password", hide_input=True, err=True)
            plan.masker.add(password)
        passphrase = None
        if ask_passphrase:
            passphrase = click.prompt("SSH key passphrase", hide_input=True, err=True)
            plan.masker.add(passphrase)
        transports = build_transports(hosts, plan.inventory, SshOptions(known_hosts, accept_new_hostkeys,
                                                                        ssh_config, password, passphrase))
    else:
        transports = {"local": LocalTransport()}
    runner = Runner(plan, transports, forks=forks, on_result=progress, prefer_native=not shell_path,
                    debug_log=dlog)
    try:
        run = runner.run()
    finally:
        if progress is not None:
            progress.stop()
        for tr in transports.values():
            tr.close()
        dlog.close()
    data = plan.masker.mask(run.to_dict())
    if console is not None:
        rconsole.render(data, console, lang=lang, quiet=quiet)
    else:
        rconsole.render_plain(data, env.stdout, lang=lang, quiet=quiet)
    _write_outputs(data, json_out, junit_out, html_out, lang)
    written = [p for p in (json_out, junit_out, html_out) if p]
    if written and not quiet:
        env.stdout.write(("已写入: " if lang == "zh-CN" else "Written: ") + ", ".join(written) + "\n")
    return exit_code_for(data["summary"], run.interrupted)


def _write_outputs(data: dict[str, Any], json_out: str | None, junit_out: str | None, html_out: str | None,
                   lang: str) -> None:
    if json_out:
        from envprobe.reports import json as rjson

        _write_atomic(json_out, rjson.dumps(data))
    if junit_out:
        from envprobe.reports import junit as rjunit

        _write_atomic(junit_out, rjunit.render(data, lang=lang))
    if html_out:
        from envprobe.reports import html as rhtml

        _write_atomic(html_out, rhtml.render(data, lang=lang))


@cli.command()
@click.argument("checklist", type=click.Path(dir_okay=False))
@click.option("--var", "var", multiple=True, metavar="NAME=VALUE", help="Set or override a checklist variable.")
@_inventory_options
@click.pass_context
def validate(ctx: click.Context, checklist: str, var: Sequence[str], inventory_path: str | None,
             limit: str | None) -> int:
    """Check CHECKLIST (and the inventory) without running anything or connecting anywhere."""
    env = _env(ctx)
    environ = _UnsetSecrets(env.environ)
    plan = _load_plan(env, checklist, var, inventory_path, limit, environ=environ)
    n_exp = sum(len(c.expectations) for c in plan.checks)
    env.stdout.write(f"{checklist}: OK — {len(plan.checks)} checks, {n_exp} expectations\n")
    if environ.unset:
        env.stdout.write(f"note: not set in this environment (a scan will need them): {', '.join(environ.unset)}\n")
    return EXIT_OK


@cli.command()
@click.argument("name", required=False)
@click.pass_context
def probes(ctx: click.Context, name: str | None) -> int:
    """List the available probes, or describe probe NAME (parameters, observed fields, example)."""
    from envprobe.registry import Registry, RegistryError

    env = _env(ctx)
    reg = Registry()
    if name is None:
        rows = []
        for n in reg.names():
            try:
                cls = reg.get(n)
                rows.append((n, cls.summary.get("en", ""), cls.summary.get("zh-CN", "")))
            except RegistryError as exc:
                rows.append((n, f"(unavailable: {exc})", ""))
        width = max((len(r[0]) for r in rows), default=4)
        for n, en, zh in rows:
            env.stdout.write(f"{n.ljust(width)}  {en}" + (f" / {zh}" if zh else "") + "\n")
        env.stdout.write("\nenvprobe probes NAME  — parameters, observed fields and an example\n")
        return EXIT_OK
    try:
        cls = reg.get(name)
    except RegistryError as exc:
        raise UsageError(str(exc)) from None
    env.stdout.write(describe_probe(cls, reg.origin(name)))
    return EXIT_OK


def describe_probe(cls: Any, origin: str = "") -> str:
    from envprobe.loader import field_unit

    lines = [f"{cls.name} — {cls.summary.get('en', '')}", f"{' ' * len(cls.name)}   {cls.summary.get('zh-CN', '')}"]
    if origin:
        lines.append(f"provided by: {origin}")
    lines.append("")
    lines.append("Parameters (with:):")
    cls.Params._resolve()
    cls.Facts._resolve()
    params = cls.Params.model_fields
    if not params:
        lines.append("  (none)")
    for pname, f in params.items():
        req = "required" if f.is_required() else f"default {f.get_default()!r}"
        lines.append(f"  {pname:<18} {_type_name(f.annotation):<14} {req}. {f.description or ''}")
    lines.append("")
    lines.append("Observed fields (expect:):")
    for fname, f in cls.Facts.model_fields.items():
        unit = field_unit(cls, fname)
        ushow = f" [{unit}]" if unit else ""
        lines.append(f"  {fname:<22} {_type_name(f.annotation)}{ushow}. {f.description or ''}")
    if cls.requires:
        lines += ["", f"Needs: {cls.requires.get('en', '')} / {cls.requires.get('zh-CN', '')}"]
    lines += ["", "Example:", *("  " + x for x in cls.example.rstrip().splitlines()), ""]
    return "\n".join(lines)


def _type_name(tp: Any) -> str:
    from envprobe.schema import type_name

    return type_name(tp)


@cli.command()
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--html", "html_out", metavar="FILE", help="Write the HTML report.")
@click.option("--junit", "junit_out", metavar="FILE", help="Write JUnit XML.")
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), help="Report language (default: as scanned, else zh-CN).")
@click.pass_context
def report(ctx: click.Context, result: str, html_out: str | None, junit_out: str | None, lang: str | None) -> int:
    """Re-render reports offline from a RESULT.json written by `scan --json`."""
    from envprobe.reports import json as rjson

    env = _env(ctx)
    try:
        data = rjson.load(result)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc) if result in str(exc) else f"{result}: {exc}") from None
    if not html_out and not junit_out:
        raise UsageError("nothing to write: give --html FILE and/or --junit FILE")
    lang = _lang(lang, (data.get("checklist") or {}).get("lang"))
    _write_outputs(data, None, junit_out, html_out, lang)
    env.stdout.write(("已写入: " if lang == "zh-CN" else "Written: ")
                     + ", ".join(p for p in (html_out, junit_out) if p) + "\n")
    return EXIT_OK


@cli.command()
@click.pass_context
def schema(ctx: click.Context) -> int:
    """Print the checklist JSON Schema (for editor completion and validation)."""
    from envprobe.loader import json_schema
    from envprobe.registry import Registry

    _env(ctx).stdout.write(json.dumps(json_schema(Registry()), indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK


STARTER = """\
# envprobe checklist — run: envprobe scan {name} --html report.html
version: 1
name: {{zh-CN: 上线前环境检查, en: Pre-go-live environment check}}
lang: zh-CN
vars:
  app_port: 8080
checks:
  - id: os
    title: {{zh-CN: 操作系统, en: Operating system}}
    probe: os
    expect: {{family: "in [linux, windows]"}}
  - id: cpu
    title: {{zh-CN: CPU 核数, en: CPU cores}}
    probe: cpu
    expect: {{logical: ">= 4"}}
  - id: memory
    title: {{zh-CN: 内存, en: Memory}}
    probe: memory
    expect: {{total_gb: ">= 8", available_gb: ">= 2"}}
  - id: root-disk
    title: {{zh-CN: 根分区空间, en: Root disk space}}
    probe: disk
    with: {{path: /}}
    expect: {{free_gb: ">= 20", used_percent: "< 85"}}
  - id: app-port-free
    title: {{zh-CN: 应用端口未被占用, en: Application port is free}}
    probe: port
    with: {{port: "{{{{ app_port }}}}"}}
    expect: {{bindable: true}}
    severity: recommended
"""


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.pass_context
def init(ctx: click.Context, path: str | None, force: bool) -> int:
    """Write a starter checklist to PATH (or print it)."""
    env = _env(ctx)
    text = STARTER.format(name=path or "checklist.yaml")
    if path is None:
        env.stdout.write(text)
        return EXIT_OK
    if Path(path).exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite")
    _write_atomic(path, text)
    env.stdout.write(f"wrote {path}; next: envprobe scan {path} --html report.html\n")
    return EXIT_OK


# -- entry point and the single error mapper ----------------------------------------------------------------
def run_cli(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run a command in-process; returns the exit code (never raises for user errors)."""
    from envprobe.errors import ConfigError

    env = env or Environment()
    try:
        # click prints --help and --version to sys.stdout: point it at the environment's stream
        with contextlib.redirect_stdout(env.stdout):
            rv = cli.main(args=list(argv) if argv is not None else None, prog_name="envprobe", obj=env,
                          standalone_mode=False)
    except click.exceptions.Abort:
        _err(env, "interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        _err(env, f"envprobe: {exc.format_message()}")
        ctx_help = "Try 'envprobe --help'." if not isinstance(exc, click.UsageError) or exc.ctx is None \
            else f"Try '{exc.ctx.command_path} --help'."
        _err(env, ctx_help)
        return EXIT_USAGE
    except ConfigError as exc:
        n = len(exc.problems)
        _print_problems(env, exc.problems, f"envprobe: {n} problem{'s' if n != 1 else ''} found; nothing was run:")
        return EXIT_USAGE
    except UsageError as exc:
        _err(env, f"envprobe: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err(env, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last resort: a bug in envprobe, said plainly, traceback to the log
        import traceback

        if env.environ.get("ENVPROBE_DEBUG"):
            _err(env, traceback.format_exc())
        _err(env, f"envprobe: internal error: {type(exc).__name__}: {exc}")
        _err(env, "This is a bug in envprobe; please report it with the command you ran.")
        _err(env, "这是 envprobe 的缺陷，请连同所运行的命令一起反馈。(ENVPROBE_DEBUG=1 shows the traceback)")
        return EXIT_UNKNOWN
    if isinstance(rv, int):
        return rv
    return EXIT_OK


def main() -> None:
    code = run_cli(sys.argv[1:])
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)
