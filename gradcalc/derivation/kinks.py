"""Kinks met at a point: from a registry record's own account (both one-sided derivatives and the
convention it reports), or, in a formula, from the branching nodes that switch there."""

from __future__ import annotations

from gradcalc.derivation.agreement import close
from gradcalc.derivation.notes import write
from gradcalc.derivation.numeric import MAX_SHRINKS, branch_mask, branch_state, first_step, shift
from gradcalc.derivation.subjects import Built, KinkHit, Subject
from gradcalc.derivation.trace import KinkTrace, Matrix, NumericTrace


def kink_trace(
    s: Subject,
    built: Built,
    values: list[float],
    j: int,
    hit: KinkHit | None,
    numeric: NumericTrace,
    jac: Matrix,
) -> KinkTrace:
    name = built.inputs[j].name
    nl, nr = numeric.left[0][j], numeric.right[0][j]
    if hit is not None:
        return KinkTrace(
            j,
            name,
            hit.where,
            hit.left == hit.right,
            hit.left,
            hit.right,
            hit.reported,
            hit.convention,
            nl,
            nr,
        )
    where, convention = _branch_description(s, built, values, j)
    if not where:
        one_side = (nl is None) != (nr is None)
        where = "an edge of the formula's domain" if one_side else "no central difference fits"
    differentiable = nl is not None and nr is not None and close(nl, nr, 2 * numeric.floor(j))
    return KinkTrace(j, name, where, differentiable, None, None, jac[0][j], convention, nl, nr)


def _branch_description(s: Subject, built: Built, values: list[float], j: int) -> tuple[str, str]:
    """Which branching nodes switch at this point, and what the sweep takes for them."""
    g = built.graph
    h = first_step(values[j]) / 4**MAX_SHRINKS
    sides = [s.build(shift(values, j, d * h), s.params).graph.nodes for d in (-1.0, 1.0)]
    wheres, conventions = [], []
    for i in branch_mask(g, built.outputs):
        node = g.nodes[i]
        if all(
            len(nodes) == len(g.nodes) and branch_state(nodes[i]) == branch_state(node)
            for nodes in sides
        ):
            continue
        if node.prim == "select":
            wheres.append(f"{node.name} = {node.definition} switches branch")
            conventions.append(f"{node.name} takes the branch its condition picks here")
        else:
            wheres.append(f"{node.name} = {node.definition} at its kink")
            rule = "sgn(0) = 0" if node.prim == "abs" else "max(0, ·) passes no gradient at 0"
            conventions.append(f"{node.name}: {rule}")
    conventions.extend(write(remark) for remark in built.remarks)
    where = "; ".join(wheres)
    return where, "; ".join(dict.fromkeys(conventions)) or "the primitives' own rules"
