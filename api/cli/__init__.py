"""The ``sendlab`` command line (Typer). Every error ends as one line on stderr (see ``group``)."""

from __future__ import annotations

import typer

from api.cli.analyze import analyze
from api.cli.demo import demo
from api.cli.experiments import assign, experiments_app
from api.cli.features import features_app
from api.cli.group import SendlabGroup
from api.cli.offline import replay, simulate
from api.cli.outcomes import outcomes
from api.cli.power import power_app
from api.cli.preview import preview
from api.cli.serve import serve

app = typer.Typer(
    cls=SendlabGroup,
    name="sendlab",
    help="SendLab: experiments and bandits for email, with honest statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.command("demo")(demo)
app.add_typer(experiments_app, name="experiments")
app.command("assign")(assign)
app.command("outcomes")(outcomes)
app.add_typer(power_app, name="power")
app.command("analyze")(analyze)
app.command("replay")(replay)
app.command("simulate")(simulate)
app.command("preview")(preview)
app.add_typer(features_app, name="features")
