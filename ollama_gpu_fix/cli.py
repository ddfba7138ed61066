"""`ollama-gpu-fix diagnose-bundle DIR [--json]` and `ollama-gpu-fix collect [DIR]`."""

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
