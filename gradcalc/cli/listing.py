"""gradcalc list: every activation and loss, with its formula, derivative and parameters."""

from __future__ import annotations

from typing import Any

import click

from gradcalc.cli.options import (
    check_indent,
    color_option,
    format_option,
    indent_option,
    json_bytes,
)


def _complete_kind(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [kind for kind in catalogue() if kind.startswith(incomplete)]


@click.command(
    "list",
    short_help="List the activations, losses, layer types and update rules with their formulas.",
    epilog=(
        "\b\nExample:\n"
        "  gradcalc list losses\n"
        "  gradcalc list --format json | jq -r '.activations[].name'"
    ),
)
@click.argument("kind", metavar="[KIND]", required=False, shell_complete=_complete_kind)
@format_option("table", "json")
@indent_option
@color_option
def command(kind: str | None, fmt: str, indent: int | None, color: str) -> None:
    """List every activation and loss that `gradcalc step` and `gradcalc derive` know: its
    formula, the closed form of its derivative, its parameters (set them with --param
    KEY=VALUE) and where it has kinks; every layer type (`type:` of a layer) with its
    equations, config keys and named mistakes; and every update rule (`optimizer:` in a config,
    --optimizer) with its equations, the state it keeps and its parameters. KIND
    (activations, losses, layers or optimizers) lists only those.
    """
    check_indent(indent, fmt, "json")
    doc = catalogue()
    if kind is not None:
        if kind not in doc:
            from gradcalc.errors import GradcalcError, did_you_mean

            raise GradcalcError(f"no kind '{kind}' to list ({did_you_mean(kind, list(doc))})")
        doc = {kind: doc[kind]}
    if fmt == "json":
        from gradcalc.contract import versioned

        click.echo(json_bytes(versioned(doc), indent), nl=False)
        return
    from gradcalc.cli.options import emit
    from gradcalc.doc.plain import Drawing, plain, to_rich

    def draw(out: Any) -> None:
        for part in to_rich(_parts(doc)):
            out.print(part)

    emit(Drawing(draw, lambda width: plain(_parts(doc), width)), None, color)


def catalogue() -> dict[str, list[dict[str, Any]]]:
    from gradcalc.functions.activations import ACTIVATIONS
    from gradcalc.functions.losses import LOSSES
    from gradcalc.functions.optimizers import OPTIMIZERS
    from gradcalc.layers import REGISTRY as LAYERS

    def params(record: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": p.name,
                "symbol": p.label,
                "default": p.default,
                "range": p.range_text,
                "learnable": p.learnable,
                "description": p.description,
            }
            for p in record.params
        ]

    def kinks(record: Any, loss: bool) -> list[dict[str, Any]]:
        p = {q.name: q.default for q in record.params}
        # Whether the slopes differ there, with the default parameters (and y_j = 1 for a loss).
        args = (1.0, 1, p) if loss else (p,)
        return [
            {
                "where": k.where,
                "convention": k.convention,
                "differentiable": k.left(*args) == k.right(*args),
            }
            for k in record.kinks
        ]

    return {
        "activations": [
            {
                "name": a.name,
                "aliases": list(a.aliases),
                "symbol": a.symbol.text,
                "elementwise": a.elementwise,
                "formula": a.formula.text,
                "derivative": a.derivative.text,
                "params": params(a),
                "kinks": kinks(a, loss=False),
            }
            for a in ACTIVATIONS
        ],
        "losses": [
            {
                "name": loss.name,
                "aliases": list(loss.aliases),
                "formula": loss.formula.text,
                "derivative": loss.derivative.text,
                "params": params(loss),
                "kinks": kinks(loss, loss=True),
            }
            for loss in LOSSES
        ],
        "layers": [
            {
                "name": kind.name,
                "title": kind.title,
                "equations": [e.text for e in kind.equations],
                "equations_tex": [e.tex for e in kind.equations],
                "keys": list(kind.keys),
                "params": list(kind.symbols),
                "mistakes": [{"name": m.name, "description": m.description} for m in kind.mistakes],
            }
            for kind in LAYERS.values()
        ],
        "optimizers": [
            {
                "name": rule.name,
                "aliases": list(rule.aliases),
                "title": rule.title,
                "equations": [e.text for e in rule.equations],
                "equations_tex": [e.tex for e in rule.equations],
                "state": list(rule.state),
                "params": params(rule),
            }
            for rule in OPTIMIZERS
        ],
    }


def _parts(doc: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """Each section's table, then an empty line (drawn without rich where plain, see
    gradcalc.doc.plain)."""
    from gradcalc.doc.plain import Table, Text

    parts: list[Any] = []
    for section, rows in doc.items():
        if section == "optimizers":
            parts += [_rules_table(rows), Text("")]
            continue
        if section == "layers":
            parts += [_layers_table(rows), Text("")]
            continue
        table = Table(title=Text(section.capitalize(), style="bold"), show_lines=True)
        table.add_column("name", no_wrap=True)
        for column in ("formula", "derivative", "parameters"):
            table.add_column(column, overflow="fold")
        for row in rows:
            name = row["name"] + "".join(f"\n({alias})" for alias in row["aliases"])
            parameters = (
                "\n".join(
                    f"{p['name']} = {p['default']:g} ({p['range']}"
                    f"{', learned' if p['learnable'] else ''}): {p['description']}"
                    for p in row["params"]
                )
                or "—"
            )
            derivative = row["derivative"] + "".join(
                f"\n{_kink_word(k['differentiable'])} at {k['where']}: reports {k['convention']}"
                for k in row["kinks"]
            )
            table.add_row(Text(name), Text(row["formula"]), Text(derivative), Text(parameters))
        parts += [table, Text("")]
    return parts


def _parameters(row: dict[str, Any]) -> str:
    return (
        "\n".join(
            f"{p['name']} = {p['default']:g} ({p['range']}): {p['description']}"
            for p in row["params"]
        )
        or "—"
    )


def _rules_table(rows: list[dict[str, Any]]) -> Any:
    from gradcalc.doc.plain import Table, Text

    table = Table(title=Text("Update rules (optimizer:)", style="bold"), show_lines=True)
    table.add_column("name", no_wrap=True)
    table.add_column("update, with g = ∂C/∂θ", overflow="fold")
    table.add_column("parameters", overflow="fold")
    for row in rows:
        name = row["name"] + "".join(f"\n({alias})" for alias in row["aliases"])
        rule = row["title"] + "".join(f"\n  {e}" for e in row["equations"])
        table.add_row(Text(name), Text(rule), Text(_parameters(row)))
    return table


def _layers_table(rows: list[dict[str, Any]]) -> Any:
    from gradcalc.doc.plain import Table, Text

    table = Table(title=Text("Layer types (type: of a layer)", style="bold"), show_lines=True)
    table.add_column("type", no_wrap=True)
    table.add_column("forward and backward", overflow="fold")
    table.add_column("keys", overflow="fold")
    for row in rows:
        equations = row["title"] + "".join(f"\n  {e}" for e in row["equations"])
        keys = ", ".join(row["keys"]) or "—"
        if row["mistakes"]:
            keys += "\nnamed mistakes: " + ", ".join(m["name"] for m in row["mistakes"])
        table.add_row(Text(row["name"]), Text(equations), Text(keys))
    return table


def _kink_word(differentiable: bool) -> str:
    return "junction (smooth with the defaults)" if differentiable else "kink"
