"""The ``sendlab`` command line (Typer). Every error ends as one line on stderr (see ``group``).

Sub-commands are named here and imported when used (:class:`api.cli.group.LazyCommand`), so nothing
heavy is loaded before a command runs.
"""

from __future__ import annotations

import typer

from api.cli.group import LazyCommand, SendlabGroup

#: Every sub-command: where it lives and the line ``sendlab --help`` shows for it, in that order.
NAME_TO_COMMAND: dict[str, LazyCommand] = {
    "serve": LazyCommand("api.cli.serve:serve", "Run the HTTP API (OpenAPI page at /docs). Keys come from "
                         "SENDLAB_ADMIN_KEY / SENDLAB_SEND_KEY."),
    "demo": LazyCommand("api.cli.demo:demo", "Run the example experiment end to end: create, send, collect "
                        "outcomes, learn, analyse."),
    "assign": LazyCommand("api.cli.experiments:assign", "Assign one recipient, or a whole send from a file "
                          "(decisions are logged, as over HTTP)."),
    "outcomes": LazyCommand("api.cli.outcomes:outcomes", "Record outcome events from a file; a repeated "
                            "event id counts once. Every row is checked before\nany is recorded: a bad row "
                            "records nothing."),
    "analyze": LazyCommand("api.cli.analyze:analyze", "Significance, lift intervals, Bayesian and sequential "
                           "results, SRM and guardrails per slot."),
    "replay": LazyCommand("api.cli.offline:replay", "Estimate how a policy would have done on logged sends "
                          "(IPS, SNIPS, DM, DR), in bounded memory."),
    "simulate": LazyCommand("api.cli.offline:simulate", "Run policies on a synthetic audience and compare "
                            "reward, regret and the A/B test's verdicts."),
    "learn": LazyCommand("api.cli.learn:learn", "Learn an adaptive experiment's policy now, or with "
                         "--watch whenever its update schedule says."),
    "preview": LazyCommand("api.cli.preview:preview", "What each sample recipient would get and why: rules "
                           "fired, variants offered, probabilities,\nrendered content; then the rule "
                           "combinations and fallbacks the sample leaves uncovered."),
    "experiments": LazyCommand("api.cli.experiments:experiments_app", "Create, list, show, pause, resume, "
                               "archive and graduate experiments."),
    "power": LazyCommand("api.cli.power:power_app", "Sample size, minimum detectable effect, power and "
                         "duration of a test before launch."),
    "features": LazyCommand("api.cli.features:features_app", "Audience features (RFM, K-means segments, "
                            "conversion scores) from a purchase and engagement history."),
    "db": LazyCommand("api.cli.db_commands:db_app", "Maintain the store: upgrade its schema, drop contexts "
                      "and feature versions past the retention period."),
    "export": LazyCommand("api.cli.export:export", "An experiment's decision and outcome log as Parquet "
                          "partitioned by day."),
    "verify": LazyCommand("api.cli.verify:verify", "Recompute an experiment's rollups (the sums results "
                          "read) from its log and compare."),
    "recipients": LazyCommand("api.cli.recipients:recipients_app", "Show or erase what is stored about one "
                              "recipient."),
}


class SendlabCommands(SendlabGroup):
    """The ``sendlab`` root with :data:`NAME_TO_COMMAND`."""

    lazy_commands = NAME_TO_COMMAND


app = typer.Typer(
    cls=SendlabCommands,
    name="sendlab",
    help="SendLab: experiments and bandits for email, with honest statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """SendLab: experiments and bandits for email, with honest statistics."""
