"""pocketbert: distil BERT-family models the DistilBERT way, export them to phones, benchmark them.

The `pocketbert` console script. Each package owns its subcommand's arguments: a module with
`add_arguments(parser)` and `run(args) -> int`. Modules are imported for their arguments only;
heavy libraries are imported inside `run`, so `pocketbert --help` stays instant."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from pocketbert import __version__
from pocketbert.argtypes import check_scopes
from pocketbert.common import UsageError, install_signal_handlers, kept_on_disk, received_signal, reset_signal_state

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "export": ("export.cli", "export a model to ExecuTorch / CoreML / ONNX bundles, parity-checked"),
    "bench": ("bench.cli", "benchmark bundles and PyTorch across runtimes (the paper's Table 3 study)"),
    "report": ("bench.report_cli", "render Markdown/CSV/PNG reports from benchmark records"),
    "distill": ("distill.cli", "distil a student from a BERT-family teacher (triple loss)"),
    "android": ("android_demo.cli", "put exported bundles into the Android QA demo app and install it"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse with ONE stderr line per error (`pocketbert bench: error: argument --limit: ...`),
    exit code 2; the usage block is left to --help."""

    def error(self, message: str):
        message = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="pocketbert", description=__doc__.splitlines()[0],
                            epilog="run `pocketbert COMMAND --help` for a command's options")
    parser.add_argument("--version", action="version", version=f"pocketbert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    import signal

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:  # a command may read its own spelling first (distill's modes)
        normalize = getattr(importlib.import_module(SUBCOMMANDS[argv[0]][0]), "normalize_argv", None)
        argv = [argv[0], *normalize(argv[1:])] if normalize else argv
    try:
        args = parser.parse_args(argv)  # a bad value: one line, exit 2, before any work
        check_scopes(parser, args)  # a flag its mode would ignore: the same, refused
    except SystemExit as e:
        if e.code in (0, None):  # --help, --version
            raise
        return int(e.code) if isinstance(e.code, int) else 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    name = f"pocketbert {args.command}"
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    install_signal_handlers()  # SIGTERM stops as cleanly as Ctrl-C
    try:
        return int(args._run(args) or 0)
    except UsageError as e:
        if received_signal():
            return _interrupted(name, received_signal())
        print(f"{name}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return _interrupted(name, received_signal() or signal.SIGINT)
    except Exception as e:  # noqa: BLE001 - no traceback for the user; POCKETBERT_TRACEBACK=1 shows it
        if received_signal():  # an interrupt a library wrapped in its own error (e.g. during lowering)
            return _interrupted(name, received_signal())
        if os.environ.get("POCKETBERT_TRACEBACK"):
            raise
        disk = _disk_trouble(e)
        if disk:
            print(f"{name}: error: {disk}", file=sys.stderr)
            return 1
        msg = " ".join(str(e).split())[:300]
        print(f"{name}: error: internal error ({type(e).__name__}: {msg}); "
              "POCKETBERT_TRACEBACK=1 shows where", file=sys.stderr)
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        reset_signal_state()  # a signal this command handled must not stop the next one in this process


# What a user can do when the disk says no: the cause is theirs to fix, not a bug of ours.
_DISK_HINTS = {
    errno.ENOSPC: "the disk is full: free space there, or write elsewhere (--out)",
    errno.EDQUOT: "the disk quota is exceeded: free space there, or write elsewhere (--out)",
    errno.EROFS: "that file system is read-only: write elsewhere (--out)",
    errno.EACCES: "no permission to write there: write elsewhere (--out) or fix its permissions",
    errno.EPERM: "no permission to write there: write elsewhere (--out) or fix its permissions",
}


def _disk_trouble(e: BaseException) -> str | None:
    """One line for an error whose cause (or a cause it wraps) is a full, read-only or forbidden disk."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _DISK_HINTS:
            where = f" {e.filename}" if e.filename else ""
            return f"cannot write{where}: {e.strerror or os.strerror(e.errno)}; {_DISK_HINTS[e.errno]}"
        if "No space left on device" in str(e):  # a C++ library's own wording (torch, onnx writers)
            return f"cannot write: No space left on device; {_DISK_HINTS[errno.ENOSPC]}"
        e = e.__cause__ or e.__context__
    return None


def _interrupted(name: str, signum: int) -> int:
    import signal

    what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
    kept = kept_on_disk()
    left = f"kept on disk: {'; '.join(kept)}" if kept else "nothing partial was left behind"
    print(f"{name}: {what}; {left}", file=sys.stderr)
    return 128 + int(signum)


if __name__ == "__main__":
    sys.exit(main())
