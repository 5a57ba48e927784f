"""`python -m cost_model …`: per-stream-second counts, measured counts, prices, and the comparison.

One module per subcommand (compare, what_if, counts, count, price_list), each adding its parser from the
options they share (options.py)."""

from __future__ import annotations

import sys

from cost_model.cli import compare, count, counts, price_list, what_if
from cost_model.cli.common import AslError
from cost_model.cli.options import EXIT_BAD_INPUT, Parser
from cost_model.inputs import InputError
from cost_model.prices import PurchaseUnavailable, UnknownRegion

SUBCOMMANDS = (compare, what_if, counts, count, price_list)


def build_parser() -> Parser:
    parser = Parser(prog="python -m cost_model", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in SUBCOMMANDS:
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (InputError, AslError, UnknownRegion, PurchaseUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
