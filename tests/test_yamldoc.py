"""gradcalc.yamldoc's character check: a config holds YAML's printable characters only."""

from __future__ import annotations

import re

from gradcalc.yamldoc import _NOT_PRINTABLE

# YAML 1.2's c-printable (tab, newline and CR among the controls), as the spec writes it.
PRINTABLE = re.compile("[\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def test_every_character_is_refused_exactly_when_yaml_calls_it_not_printable() -> None:
    text = "".join(map(chr, range(0x110000)))
    refused = {m.start() for m in _NOT_PRINTABLE.finditer(text)}
    allowed = {m.start() for m in PRINTABLE.finditer(text)}
    assert refused.isdisjoint(allowed)
    assert len(refused) + len(allowed) == 0x110000
    assert {0x00, 0x0B, 0x7F, 0x86, 0xD800, 0xFFFE} <= refused
