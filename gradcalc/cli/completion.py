"""gradcalc completion: the shell completion script, from click's completion machinery."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command(
    "completion",
    short_help="Print the shell completion script for bash, zsh or fish.",
    epilog=(
        "\b\nExample:\n"
        '  eval "$(gradcalc completion bash)"          # in ~/.bashrc\n'
        '  eval "$(gradcalc completion zsh)"           # in ~/.zshrc, after compinit\n'
        "  gradcalc completion fish > ~/.config/fish/completions/gradcalc.fish"
    ),
)
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print the script that makes SHELL complete gradcalc's commands, options, example names
    (--example), function names (derive NAME) and their parameters (--param), list kinds and
    file paths (CONFIG, -o, --points).
    """
    from click.shell_completion import get_completion_class

    from gradcalc.cli import cli

    completion = get_completion_class(shell)
    assert completion is not None  # click ships all three
    # The script calls `gradcalc` back with _GRADCALC_COMPLETE set; click answers in cli.main.
    source = completion(cli, {}, "gradcalc", "_GRADCALC_COMPLETE").source()
    click.echo(source, nl=not source.endswith("\n"))
