"""A class of answer sheets for a generated course folder, with known mistakes planted in some:
used by tests/test_course_class.py and benchmarks/bench_class.py."""

from __future__ import annotations

import json
from pathlib import Path

# What sheet i gets, by i mod 4: None is a correct sheet; "garbled" adds 0.777 to z²₁ (a slip
# no record names).
PLANTS = (None, "missing_activation_derivative", "update_sign", "garbled")


def write_sheets(course: Path, out: Path) -> dict[str, str | None]:
    """One sheet per variant of the course, worked to the course's decimals as `gradcalc step
    --round N` works them; returns what was planted in each id's sheet. Even sheets are named
    ID.json, odd ones sheet-I.json with an `id:` key."""
    from gradcalc.step import config
    from gradcalc.step.engine import run
    from gradcalc.step.json import render

    manifest = json.loads((course / "course.json").read_text())
    d = manifest["decimals"]
    out.mkdir(parents=True, exist_ok=True)
    planted: dict[str, str | None] = {}
    for i, v in enumerate(manifest["variants"]):
        spec = config.load(str(course / v["folder"] / "config.yaml"))
        doc = json.loads(render(run(spec, round_to=d)))
        layers = doc["steps"][0]["layers"]
        last, kind = layers[-1], PLANTS[i % len(PLANTS)]
        if kind == "missing_activation_derivative":  # δ^L = a^L − y, no σ'(z^L)
            last["delta"][0] = round(last["a"][0] - float(spec.y[0, 0]), d)
        elif kind == "update_sign":  # b → b + η δ
            b, eta = float(spec.layers[-1].biases[0]), spec.learning_rate
            last["biases"][0] = round(b + eta * last["delta"][0], d)
        elif kind == "garbled":
            layers[0]["z"][0] = round(layers[0]["z"][0] + 0.777, d)
        planted[v["id"]] = kind
        if i % 2:
            doc = {"id": v["id"], **doc}
            name = f"sheet-{i}.json"
        else:
            name = f"{v['id']}.json"
        (out / name).write_text(json.dumps(doc))
    return planted
