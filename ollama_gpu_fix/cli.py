"""`ollama-gpu-fix diagnose-bundle DIR [--json]`, `collect [DIR]`, `rollout INVENTORY`,
`page` and `check`."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING

from ollama_gpu_fix import report
from ollama_gpu_fix.bundle import BundleError, read_bundle
from ollama_gpu_fix.parsers import build_snapshot
from ollama_gpu_fix.rules import diagnose

if TYPE_CHECKING:
    import argparse  # imported in build_parser: see _plain_diagnose_bundle


def _diagnose_bundle(args: argparse.Namespace | SimpleNamespace) -> int:
    try:
        bundle = read_bundle(args.directory)
    except BundleError as exc:
        print(f"ollama-gpu-fix: cannot read bundle: {report.printable(str(exc))}", file=sys.stderr)
        return 2
    snapshot = build_snapshot(bundle.sections, bundle.problems)
    diagnosis = diagnose(snapshot)
    if args.json:
        print(report.dumps(report.to_json(snapshot, diagnosis)))
    else:
        print(report.render_text(snapshot, diagnosis, host=str(args.directory)))
    return 0


def _collect(args: argparse.Namespace) -> int:
    from ollama_gpu_fix.collect import collect

    return collect(args.directory)


def _rollout(args: argparse.Namespace) -> int:
    from ollama_gpu_fix.rollout import RolloutError, run

    try:
        return run(args.inventory, canary=args.canary, wave_size=args.wave_size,
                   max_failed=args.max_failed, dry=args.dry, report_dir=args.report_dir,
                   extra=args.pyinfra_args, log=lambda line: print(line, flush=True))
    except RolloutError as exc:
        print(f"ollama-gpu-fix rollout: {exc}", file=sys.stderr)
        return 2


def _page(args: argparse.Namespace) -> int:
    """The fleet page of a run (default: the latest) from the reports already written."""
    from pathlib import Path

    from ollama_gpu_fix import fleet, fleetpage, runs

    report_dir = Path(args.report_dir)
    index = runs.read_index(report_dir)["runs"]
    entry = next((r for r in reversed(index) if args.run in (None, r.get("run_id"))), None)
    if entry is None:
        what = f"run {args.run}" if args.run else "any run"
        print(f"ollama-gpu-fix page: {report_dir}/index.json lists no {what}", file=sys.stderr)
        return 2
    found = runs.run_reports(report_dir, run_id=entry["run_id"], mode=entry.get("mode"))
    hosts = list(entry.get("hosts") or {})
    table = fleet.rows({h: found.get(h) for h in hosts})
    out = Path(args.output) if args.output else \
        report_dir / "pages" / f"{entry['run_id']}-{entry.get('mode')}.html"
    try:
        fleetpage.write(out, fleetpage.render(
            table, f"{entry.get('mode')} {entry['run_id']}",
            {"run_id": entry["run_id"], "mode": entry.get("mode"),
             "time": entry.get("started_at")}), None if args.output else report_dir)
    except OSError as exc:
        print(f"ollama-gpu-fix page: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    print(fleet.text_table(table))
    print(f"fleet page: {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from ollama_gpu_fix.check import main as check

    return check(args.state_dir, args.textfile_dir, args.generate, args.retire)


def version() -> str:
    from importlib import metadata  # 20 ms of imports: only when asked

    try:
        return metadata.version("ollama-gpu-fix")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    import argparse

    class _Version(argparse.Action):
        """argparse's version action, with the version looked up only when --version is given."""

        def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
            super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

        def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]  # noqa: ANN001
            print(f"{parser.prog} {version()}")  # stdout, as argparse's own version action
            parser.exit()

    parser = argparse.ArgumentParser(
        prog="ollama-gpu-fix",
        description="Why does Ollama run on the CPU? Diagnose a bundle or collect one.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True)
    diag = sub.add_parser("diagnose-bundle", help="diagnose a bundle directory offline")
    diag.add_argument("directory")
    diag.add_argument("--json", action="store_true", help="print the JSON report")
    diag.set_defaults(func=_diagnose_bundle)
    col = sub.add_parser("collect", help="write a bundle of this machine (what the probe sees)")
    col.add_argument(
        "directory", nargs="?", default=None, help="default: ./ollama-gpu-bundle-HOST-TIME"
    )
    col.set_defaults(func=_collect)
    roll = sub.add_parser(
        "rollout", help="fix a fleet a canary first, then in waves that stop on a failure",
        description="Fix INVENTORY with pyinfra a canary first, then in waves: a wave's "
        "verification gates the next, and the rollout stops at the first wave that takes it "
        "over --max-failed (later hosts untouched). The same command again resumes, skipping "
        "hosts already verified. Arguments after -- go to pyinfra (e.g. -- --sudo).")
    roll.add_argument("inventory", help="a pyinfra inventory (file, host list)")
    roll.add_argument("--canary", default="1", metavar="GROUP|N",
                      help="an inventory group, or the first N hosts (default 1)")
    roll.add_argument("--wave-size", default="25%", metavar="N|P%",
                      help="hosts per wave after the canary (default 25%%)")
    roll.add_argument("--max-failed", type=int, default=0, metavar="N",
                      help="failed hosts the whole rollout tolerates (default 0)")
    roll.add_argument("--dry", action="store_true",
                      help="print the waves and each host's plan; change nothing")
    roll.add_argument("--report-dir", default="reports", metavar="DIR")
    roll.add_argument("pyinfra_args", nargs="*", help=argparse.SUPPRESS)
    roll.set_defaults(func=_rollout)
    page = sub.add_parser("page", help="write the fleet page (HTML) of a run from its reports")
    page.add_argument("--report-dir", default="reports", metavar="DIR")
    page.add_argument("--run", default=None, metavar="ID", help="default: the latest run")
    page.add_argument("-o", "--output", default=None, metavar="FILE")
    page.set_defaults(func=_page)
    chk = sub.add_parser(
        "check", help="is Ollama still on the GPU? (the watchdog's check; exit 0/1/2/3)",
        description="One watchdog check of this machine, as root: the probe without a "
        "generation, the diagnosis, and the verdict. Prints one line; exits 0 OK, 1 WARNING, "
        "2 CRITICAL (fallen back to the CPU), 3 UNKNOWN (the check could not run), as a "
        "monitoring plugin does. With --textfile-dir, writes node_exporter's textfile metrics.")
    chk.add_argument("--textfile-dir", metavar="DIR", default=None,
                     help="node_exporter's --collector.textfile.directory")
    chk.add_argument("--state-dir", metavar="DIR", default=None,
                     help="default /var/lib/ollama-gpu-fix/watchdog")
    chk.add_argument("--generate", action="store_true",
                     help="when no model is loaded, time a bounded generation too")
    chk.add_argument("--retire", action="store_true", help=argparse.SUPPRESS)  # its removal
    chk.set_defaults(func=_check)
    return parser


def _plain_diagnose_bundle(argv: Sequence[str]) -> SimpleNamespace | None:
    """`diagnose-bundle DIR [--json]` (--json before or after DIR), read without argparse:
    importing it and building the parser (gettext, locale, shutil for the terminal width) is
    ~7 ms of a start that must stay within 3x a bare interpreter (issue 13, bench/startup.py).
    None for anything else (help, errors, abbreviations, a DIR that starts with "-"):
    argparse reads those, with its own messages."""
    if len(argv) not in (2, 3) or argv[0] != "diagnose-bundle":
        return None
    rest = [arg for arg in argv[1:] if arg != "--json"]
    if len(rest) != 1 or rest[0].startswith("-"):
        return None
    json = len(argv) == 3  # exactly one --json
    return SimpleNamespace(command="diagnose-bundle", directory=rest[0], json=json,
                           func=_diagnose_bundle)


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    given = sys.argv[1:] if argv is None else list(argv)
    args = _plain_diagnose_bundle(given) or build_parser().parse_args(given)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("ollama-gpu-fix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
