"""The conventions of the Python CLI world (issue 12): colour control, shell completion, help that
works for an installed user, packaging metadata and releases."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from doc_pages import PAGES, section

import gradcalc
from gradcalc.cli import COMMANDS, cli
from gradcalc.functions.activations import ACTIVATIONS
from gradcalc.functions.losses import LOSSES
from gradcalc.step.examples import available

ROOT = Path(__file__).resolve().parent.parent
ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# One invocation per command that draws with rich.
PRINTING = {
    "step": ["step", "--example", "worked-example"],
    "step --explain": ["step", "--example", "worked-example", "--explain"],
    "derive": ["derive", "sigmoid", "--at", "0.3"],
    "list": ["list"],
    "examples": ["examples"],
}


# ---- colour ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PRINTING)
@pytest.mark.parametrize(
    ("flags", "env", "coloured"),
    [
        ([], {}, False),  # auto, piped: CliRunner is not a terminal
        ([], {"FORCE_COLOR": "1"}, True),
        ([], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),  # NO_COLOR wins
        ([], {"FORCE_COLOR": ""}, False),  # set but empty does not count
        (["--color", "auto"], {"FORCE_COLOR": "1"}, True),
        (["--color", "always"], {}, True),
        (["--color", "always"], {"NO_COLOR": "1"}, True),  # the flag beats the environment
        (["--color", "always"], {"TERM": "dumb"}, True),
        # A dumb terminal gets none under auto, forced or not (rich's rule, issue 16 §9).
        ([], {"FORCE_COLOR": "1", "TERM": "dumb"}, False),
        ([], {"FORCE_COLOR": "1", "TERM": "unknown"}, False),
        ([], {"TTY_COMPATIBLE": "1"}, True),
        ([], {"TTY_COMPATIBLE": "1", "TERM": "dumb"}, False),
        ([], {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, False),
        (["--color", "never"], {"FORCE_COLOR": "1"}, False),
        (["--no-color"], {"FORCE_COLOR": "1"}, False),  # the old flag, --color never
    ],
)
def test_color_option_and_environment(
    run_cli, name: str, flags: list[str], env: dict[str, str], coloured: bool
) -> None:
    env = {"NO_COLOR": None, "FORCE_COLOR": None, "TTY_COMPATIBLE": None, "COLUMNS": "120", **env}
    result = run_cli([*PRINTING[name], *flags], env=env)
    assert result.exit_code == 0, result.output
    assert ("\x1b[" in result.stdout) is coloured
    plain = run_cli([*PRINTING[name], "--color", "never"], env={"COLUMNS": "120"})
    if "TERM" not in env:  # (a dumb terminal is 80 columns wide whatever COLUMNS says)
        # Colour changes how the text looks, never what it says.
        assert ESCAPE.sub("", result.stdout) == plain.stdout


@pytest.mark.parametrize("name", ["list", "examples", "derive"])
@pytest.mark.parametrize(("term", "coloured"), [("dumb", False), ("xterm-256color", True)])
def test_a_real_terminal_gets_colour_unless_it_is_dumb(
    name: str, term: str, coloured: bool
) -> None:
    """On a pseudo-terminal, as a user runs it: TERM=dumb means no escape codes at all."""
    pty = pytest.importorskip("pty")
    import os

    argv = {"list": ["list", "losses"], "examples": ["examples"], "derive": PRINTING["derive"]}
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    leader, follower = pty.openpty()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "gradcalc", *argv[name]],
            stdout=follower,
            stderr=subprocess.PIPE,
            env={**env, "TERM": term, "TTY_COMPATIBLE": ""},
            timeout=60,
            check=False,
        )
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the pty is drained once its writer has gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    assert run.returncode == 0, run.stderr
    assert len(out) > 100
    assert (b"\x1b[" in out) is coloured


def test_no_color_and_color_always_contradict(run_cli) -> None:
    result = run_cli(["list", "--no-color", "--color", "always"])
    assert result.exit_code == 2
    assert "--no-color and --color always" in result.stderr


def test_color_rejects_an_unknown_mode(run_cli) -> None:
    result = run_cli(["list", "--color", "sometimes"])
    assert result.exit_code == 2
    assert "'auto', 'always', 'never'" in result.stderr


@pytest.mark.parametrize("name", ["step", "derive"])
def test_a_file_written_with_output_is_plain(run_cli, tmp_path: Path, name: str) -> None:
    target = tmp_path / "out.txt"
    result = run_cli([*PRINTING[name], "--color", "always", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert "\x1b[" not in text and len(text) > 100


@pytest.mark.parametrize("name", ["step", "derive", "list", "examples"])
def test_every_printing_command_has_the_color_options(run_cli, name: str) -> None:
    help_text = run_cli([name, "--help"]).stdout
    assert "--color [auto|always|never]" in help_text
    assert "--no-color" in help_text


def test_docs_document_colour_control() -> None:
    colour = section("Colour")
    for needle in ("--color auto", "--color always", "--color never", "NO_COLOR", "FORCE_COLOR"):
        assert needle in colour, needle
    assert "--no-color" in colour


# ---- shell completion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _gradcalc_completion gradcalc"),
        ("zsh", "#compdef gradcalc"),
        ("fish", "complete --no-files --command gradcalc"),
    ],
)
def test_completion_prints_the_script(run_cli, shell: str, marker: str) -> None:
    result = run_cli(["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.stdout
    assert f"_GRADCALC_COMPLETE={shell}_complete" in result.stdout
    checker = shutil.which(shell)
    if checker:  # the script parses in its own shell, where that shell is installed
        check = subprocess.run(
            [checker, "-n"], input=result.stdout, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stderr


def test_completion_refuses_an_unknown_shell(run_cli) -> None:
    result = run_cli(["completion", "tcsh"])
    assert result.exit_code == 2
    assert "'bash', 'zsh', 'fish'" in result.stderr


def complete(run_cli, line: str) -> list[tuple[str, str]]:
    """What click's bash completion answers for the command line `line` (cursor at its end)."""
    words = line.split(" ")
    result = run_cli(
        [],
        env={
            "_GRADCALC_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        },
    )
    assert result.exit_code == 0, result.output
    return [tuple(row.split(",", 1)) for row in result.stdout.splitlines()]  # type: ignore[misc]


def registry_names() -> list[str]:
    return [n for r in (*ACTIVATIONS, *LOSSES) for n in (r.name, *r.aliases)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("gradcalc ", list(COMMANDS)),
        ("gradcalc comp", ["completion"]),
        ("gradcalc step --example ", list(available())),
        ("gradcalc step --example wo", [n for n in available() if n.startswith("wo")]),
        ("gradcalc derive ", registry_names()),
        ("gradcalc derive s", [n for n in registry_names() if n.startswith("s")]),
        ("gradcalc derive bi", ["binary_cross_entropy"]),
        ("gradcalc list ", ["activations", "losses", "layers", "optimizers"]),
        ("gradcalc list l", ["losses", "layers"]),
        ("gradcalc step --optimizer ad", ["adagrad", "adam", "adamw"]),
        ("gradcalc step --color ", ["auto", "always", "never"]),
        (
            "gradcalc derive tanh --format ",
            ["table", "json", "dot", "svg", "markdown", "latex", "html"],
        ),
        ("gradcalc completion ", ["bash", "zsh", "fish"]),
    ],
)
def test_completion_offers_names(run_cli, line: str, expected: list[str]) -> None:
    answers = complete(run_cli, line)
    assert {kind for kind, _ in answers} == {"plain"}
    assert sorted(value for _, value in answers) == sorted(expected)
    assert expected  # a test of something


@pytest.mark.parametrize(
    "line",
    [
        "gradcalc step con",
        "gradcalc step ",
        "gradcalc step --example tanh-mse -o ",
        "gradcalc derive tanh -o t",
    ],
)
def test_completion_leaves_paths_to_the_shell(run_cli, line: str) -> None:
    assert complete(run_cli, line) == [("file", line.rsplit(" ", 1)[1])]


def test_bash_completes_through_the_installed_script(tmp_path: Path) -> None:
    """The real thing: bash sources the script, and its function asks the installed gradcalc."""
    bash = shutil.which("bash")
    installed = Path(sys.executable).parent / "gradcalc"
    if bash is None or not installed.exists():
        pytest.skip("needs bash and an installed gradcalc script")
    script = (
        'eval "$(gradcalc completion bash)"\n'
        "COMP_WORDS=(gradcalc step --example worked); COMP_CWORD=3\n"
        "_gradcalc_completion gradcalc\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {"PATH": f"{installed.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [bash, "--norc", "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0, run.stderr
    assert sorted(run.stdout.split()) == sorted(n for n in available() if n.startswith("worked"))


def test_fish_completes_through_the_installed_script(tmp_path: Path) -> None:
    fish = shutil.which("fish")
    installed = Path(sys.executable).parent / "gradcalc"
    if fish is None or not installed.exists():
        pytest.skip("needs fish and an installed gradcalc script")
    script = (
        "gradcalc completion fish | source\n"
        'complete -C "gradcalc derive si"; echo ==; complete -C "gradcalc list "\n'
    )
    env = {"PATH": f"{installed.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [fish, "--no-config", "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0, run.stderr
    derive, kinds = run.stdout.split("==\n")
    assert sorted(derive.split()) == sorted(n for n in registry_names() if n.startswith("si"))
    assert sorted(kinds.split()) == ["activations", "layers", "losses", "optimizers"]


def test_docs_document_completion_install() -> None:
    completion = section("Shell completion")
    for shell in ("bash", "zsh", "fish"):
        assert f"gradcalc completion {shell}" in completion


# ---- help for an installed user --------------------------------------------------------------


def help_text(run_cli, *words: str) -> str:
    result = run_cli([*words, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_step_usage_says_config_is_optional(run_cli) -> None:
    text = help_text(run_cli, "step")
    assert "Usage: gradcalc step [OPTIONS] [CONFIG]" in text
    assert "--example NAME replaces CONFIG" in " ".join(text.split())
    assert "--max-rows N" in text and "INTEGER RANGE" not in text


@pytest.mark.parametrize("name", ["step", "derive"])
def test_output_to_standard_output_is_documented(run_cli, name: str) -> None:
    assert "- is standard output" in " ".join(help_text(run_cli, name).split())
    result = run_cli([*PRINTING[name], "--format", "json", "-o", "-"])
    assert result.exit_code == 0 and result.stdout.startswith("{")


def help_examples() -> list[list[str]]:
    """The argv of every gradcalc call in the help examples of gradcalc and each command."""
    calls = []
    for name in ["", *COMMANDS]:
        result = CliRunner().invoke(cli, [*([name] if name else []), "--help"])
        epilog = result.output.split("Example", 1)[1]
        for line in epilog.splitlines():
            line = re.sub(r'"\$\((.*?)\)"', r"\1", line)  # eval "$(gradcalc ...)"
            tokens = shlex.split(line, comments=True)
            while "gradcalc" in tokens:
                tokens = tokens[tokens.index("gradcalc") + 1 :]
                argv = []
                for token in tokens:
                    if token in ("|", "&&", ">"):
                        break
                    argv.append(token)
                calls.append(argv)
    return calls


@pytest.mark.parametrize("argv", help_examples(), ids=" ".join)
def test_help_examples_work_for_an_installed_user(
    run_cli, argv: list[str], tmp_path: Path, monkeypatch
) -> None:
    """Run from an empty folder, as someone who installed the wheel would: no configs/ there."""
    monkeypatch.chdir(tmp_path)
    result = run_cli(argv)
    assert result.exit_code == 0, (argv, result.output)


def test_help_never_names_a_checkout_path(run_cli) -> None:
    for name in ["", *COMMANDS]:
        assert "configs/" not in help_text(run_cli, *([name] if name else []))


# ---- packaging -------------------------------------------------------------------------------


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_mit_as_pep_639_says() -> None:
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 gradcalc developers" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    # PEP 639: the licence expression replaces licence classifiers; setuptools refuses both.
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_metadata_is_complete() -> None:
    data = pyproject()
    project = data["project"]
    assert project["authors"] == [{"name": "gradcalc developers"}]
    assert len(project["keywords"]) >= 5 and "backpropagation" in project["keywords"]
    assert "Environment :: Console" in project["classifiers"]
    assert "Programming Language :: Python :: 3 :: Only" in project["classifiers"]
    assert "Typing :: Typed" in project["classifiers"] and (ROOT / "gradcalc/py.typed").exists()
    assert "setuptools>=77" in data["build-system"]["requires"]
    assert "jsonschema" in " ".join(project["optional-dependencies"]["test"])


def test_version_lives_in_one_place(run_cli) -> None:
    data = pyproject()
    assert "version" not in data["project"] and data["project"]["dynamic"] == ["version"]
    assert data["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gradcalc.__version__"}
    assert run_cli(["--version"]).stdout == f"gradcalc, version {gradcalc.__version__}\n"
    literal = re.compile(rf"(?<![\d.]){re.escape(gradcalc.__version__)}(?![\d.])")
    elsewhere = [
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("gradcalc/**/*.py"), ROOT / "pyproject.toml", *PAGES]
        if p.name != "__init__.py" or p.parent.name != "gradcalc"
        if literal.search(p.read_text(encoding="utf-8"))
    ]
    assert elsewhere == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """`pip wheel .` as a packager runs it, in pip's isolated build environment, on a clean copy
    of the source (a checkout's old build/ would leak modules that no longer exist): the wheel
    and the build's log."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-v", "-w", str(tmp_path)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    (built,) = tmp_path.glob("gradcalc-*.whl")
    return built, log


def test_wheel_builds_without_deprecation_warnings(wheel: tuple[Path, str]) -> None:
    built, log = wheel
    warnings = [line for line in log.splitlines() if re.search("deprecat", line, re.I)]
    assert warnings == []
    with zipfile.ZipFile(built) as zf:
        names = zf.namelist()
        info = f"gradcalc-{gradcalc.__version__}.dist-info"
        metadata = zf.read(f"{info}/METADATA").decode()
    assert f"{info}/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    assert "Author: gradcalc developers" in metadata
    assert f"Version: {gradcalc.__version__}" in metadata
    # The wheel holds exactly the source's modules, every bundled example, answer sheet and
    # schema, and py.typed.
    modules = {str(p.relative_to(ROOT)) for p in ROOT.glob("gradcalc/**/*.py")}
    assert {n for n in names if n.endswith(".py")} == modules
    assert {f"gradcalc/configs/{n}.yaml" for n in available()} <= set(names)
    answers = {f"gradcalc/configs/answers/{p.name}" for p in ROOT.glob("configs/answers/*.yaml")}
    schemas = {f"gradcalc/schemas/{p.name}" for p in ROOT.glob("schemas/*.schema.json")}
    assert answers and schemas and answers | schemas <= set(names)
    assert "gradcalc/py.typed" in names
    # What pip 23 shows as Home-page and what newer tools read from Project-URL agree.
    home = pyproject()["project"]["urls"]["Homepage"]
    assert f"Home-page: {home}" in metadata
    for label, url in pyproject()["project"]["urls"].items():
        assert f"Project-URL: {label}, {url}" in metadata and url.startswith(home)
    assert not [line for line in metadata.splitlines() if line.startswith("License:")]


CHECKOUT = ("configs/", "schemas/", "tests/", "benchmarks/", ".ci/")


def test_installed_wheel_runs_the_documented_commands(wheel: tuple[Path, str], tmp_path):
    """Install the wheel into a fresh virtual environment (its dependencies are this
    environment's, on a path line) and run every documented command from an empty folder:
    each that needs no checkout works, and shows what the page shows."""
    from doc_pages import console_commands, parse, pipe, same_data

    built, _ = wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    install = [*pip, "install", "--no-deps", "--no-index", "--no-compile", str(built)]
    run = subprocess.run(install, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    import click  # the dependencies live beside click in this environment

    (Path(site) / "deps.pth").write_text(str(Path(click.__file__).parent.parent) + "\n")
    gradcalc_exe = python.parent / "gradcalc"
    folder = tmp_path / "empty"
    folder.mkdir()
    env = {**os.environ, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("COLUMNS", None)

    def gc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(gradcalc_exe), *args],
            cwd=folder,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    where = subprocess.run(
        [str(python), "-c", "import gradcalc; print(gradcalc.__file__)"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert where.startswith(site), where  # the wheel's copy, not the checkout's
    # The reader's own files, from the package alone.
    config = json.loads(gc("examples", "--format", "json").stdout)
    worked = next(Path(e["path"]) for e in config if e["name"] == "worked-example")
    assert worked.is_relative_to(site)
    for mine in ("net.yaml", "my-net.yaml"):
        shutil.copy(worked, folder / mine)
    (folder / "answers.yaml").write_text(gc("step", "net.yaml", "--format", "json").stdout)
    (folder / "points.yaml").write_text("delta: 2\n")

    documented = [
        (page, command, expected, *parse(command)) for page, command, expected in console_commands()
    ]
    skipped = [
        c
        for _, c, _, words, _, _ in documented
        if any(w.startswith(CHECKOUT) for w in words) or "bad.yaml" in words
    ]
    # Each distinct command once, a few at a time: most pages repeat a few of them.
    from concurrent.futures import ThreadPoolExecutor

    unique = {tuple(words) for _, c, _, words, _, _ in documented if c not in skipped}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(unique, pool.map(lambda argv: gc(*argv), unique), strict=True))
    ran = 0
    for page, command, expected, words, stages, status in documented:
        if command in skipped:
            continue
        result = results[tuple(words)]
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert result.returncode == status, (page.name, command, result.stderr)
        ran += 1
        if expected is None:
            continue
        output = pipe(result.stdout + result.stderr, stages)
        if any(stage[0] == "jq" and "-r" not in stage for stage in stages):
            assert same_data(json.loads(output), json.loads(expected)), command
        else:
            assert output.rstrip("\n") == expected.rstrip("\n"), command
    assert ran >= 40 and len(skipped) <= 3, skipped

    # `gradcalc schema step` validates what `gradcalc step --format json` prints.
    jsonschema = pytest.importorskip("jsonschema")
    for name, args in (
        ("step", ["step", "--example", "worked-example", "--format", "json"]),
        (
            "check",
            ["check", "--example", "worked-example-slip", "--decimals", "3", "--format", "json"],
        ),
    ):
        schema = json.loads(gc("schema", name).stdout)
        document = json.loads(gc(*args).stdout)
        jsonschema.Draft202012Validator(schema).validate(document)
    # pip 23 shows the Home-page (it reads no Project-URL and, for the licence, only the old
    # License field that PEP 639 retires: docs/releasing.md says so).
    show = subprocess.run([*pip, "show", "gradcalc"], capture_output=True, text=True, check=False)
    assert f"Home-page: {pyproject()['project']['urls']['Homepage']}" in show.stdout, show.stdout


# ---- releases --------------------------------------------------------------------------------

CHANGELOG = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
RELEASE = re.compile(r"^## (\d+)\.(\d+)\.(\d+) — (\d{4}-\d{2}-\d{2})$")


def test_changelog_has_unreleased_on_top_then_dated_releases() -> None:
    headings = re.findall(r"^## .*$", CHANGELOG, flags=re.M)
    assert headings[0] == "## Unreleased"
    releases = [RELEASE.match(h) for h in headings[1:]]
    assert releases and all(releases), headings
    versions = [tuple(int(g) for g in m.groups()[:3]) for m in releases if m]
    dates = [m.group(4) for m in releases if m]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    assert dates == sorted(dates, reverse=True)
    # The newest release is the version the package says it is.
    assert ".".join(map(str, versions[0])) == gradcalc.__version__
    for body in re.split(r"^## .*$", CHANGELOG, flags=re.M)[2:]:
        assert re.search(r"^- ", body, flags=re.M), "a release section lists its changes"


def test_first_release_is_dated_by_the_git_history() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    shallow = subprocess.run(
        [git, "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True
    )
    if shallow.stdout.strip() != "false":
        pytest.skip("a shallow clone does not reach the first commit")
    run = subprocess.run(
        [git, "log", "--reverse", "--format=%ad", "--date=short"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0 or not run.stdout.strip():
        pytest.skip("no git history")
    first = run.stdout.split()[0]
    assert f"## 0.1.0 — {first}" in CHANGELOG


def test_docs_say_how_a_release_is_cut() -> None:
    releasing = section("Releasing")
    for needle in ("CHANGELOG.md", "gradcalc/__init__.py", "Unreleased", "git tag", "pip wheel"):
        assert needle in releasing, needle


def test_docs_state_the_json_versioning_rule() -> None:
    versioned = section("Versioned JSON")
    assert '"format_version"' in versioned and '"gradcalc_version"' in versioned
    assert "schemas/" in section("The schemas: `gradcalc schema`")
