"""pocketbert: distil BERT-family models the DistilBERT way, export them to phones, benchmark them.

The `pocketbert` console script. Each package owns its subcommand's arguments: a module with
`add_arguments(parser)` and `run(args) -> int`. Modules are imported for their arguments only;
heavy libraries are imported inside `run`, so `pocketbert --help` stays instant."""

from __future__ import annotations

import argparse
import importlib
import sys

from pocketbert import __version__
from pocketbert.common import UsageError

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "export": ("export.cli", "export a model to ExecuTorch / CoreML / ONNX bundles, parity-checked"),
    "bench": ("bench.cli", "benchmark bundles and PyTorch across runtimes (the paper's Table 3 study)"),
    "report": ("bench.report_cli", "render Markdown/CSV/PNG reports from benchmark records"),
    "distill": ("distill.cli", "distil a student from a BERT-family teacher (triple loss)"),
    "android": ("android_demo.cli", "put exported bundles into the Android QA demo app and install it"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pocketbert", description=__doc__.splitlines()[0],
                                     epilog="run `pocketbert COMMAND --help` for a command's options")
    parser.add_argument("--version", action="version", version=f"pocketbert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UsageError as e:
        print(f"pocketbert {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"pocketbert {args.command}: interrupted; nothing partial was left behind",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
