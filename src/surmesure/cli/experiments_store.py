"""``surmesure experiment create | assign | results | stop``: experiments kept in the store."""

from __future__ import annotations

from pathlib import Path

import typer

from surmesure.cli.common import JsonOption, console, emit_json, get_store, user_errors
from surmesure.cli.experiment import _srm_line, _variant_table
from surmesure.errors import InvalidInput
from surmesure.experiments import assign, list_all, load_file, results, save, stop
from surmesure.experiments.results import ExperimentResults


def read_people(path: Path) -> list[int]:
    """Person ids from the first column of a text or CSV file (a non-numeric first line is a
    header)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read {path}: {exc.strerror}.", field="people", hint="give a readable file"
        ) from exc
    ids: list[int] = []
    for number, line in enumerate(lines, start=1):
        cell = line.split(",", 1)[0].strip().strip('"')
        if not cell:
            continue
        try:
            ids.append(int(cell))
        except ValueError as exc:
            if number == 1:
                continue
            raise InvalidInput(
                f"{path.name} line {number}: {cell!r} is not a person id.",
                field="people",
                hint="one integer person id per line (first column), an optional header",
            ) from exc
    return ids


def print_results(res: ExperimentResults) -> None:
    """The tables of ``experiment analyze``, one per metric, primary first."""
    d = res.experiment.definition
    console.print(
        f"[bold]{d.name}[/] ({res.experiment.status}), window {d.attribution_days} days"
        + (", CUPED" if d.cuped else "")
    )
    for m in res.metrics:
        method = (
            "sequential"
            if any(v.comparison and v.comparison.method == "sequential" for v in m.result.variants)
            else "fixed horizon"
        )
        console.print(_variant_table(m.result, f"{m.metric} ({m.role}, {m.kind}, {method})"))
        console.print(_srm_line(m.result))
        if m.result.srm.mismatch:
            console.print(
                "[red]The split is off: check assignment and logging before reading lifts.[/]"
            )


def register_into(group: typer.Typer) -> None:
    """Add the store-backed commands to the ``experiment`` group."""

    @group.command("create")
    @user_errors
    def create_command(
        file: Path = typer.Argument(..., help="YAML or JSON experiment definition."),
        as_json: bool = JsonOption,
    ) -> None:
        """Save an experiment (or raise its weights: people already assigned never move)."""
        definition = load_file(file)
        store = get_store()
        try:
            outcome = save(store, definition)
        finally:
            store.dispose()
        if as_json:
            emit_json({"experiment": definition.name, "outcome": outcome})
        else:
            console.print(f"Experiment {definition.name!r} {outcome}.")

    @group.command("assign")
    @user_errors
    def assign_command(
        name: str = typer.Argument(..., help="Experiment name."),
        everyone: bool = typer.Option(
            False, "--all", help="Every identified person (customer id, e-mail, phone, card)."
        ),
        anonymous: bool = typer.Option(
            False, "--anonymous", help="With --all: people known only by anonymous ids too."
        ),
        people: Path | None = typer.Option(None, "--people", help="File of person ids."),
        segment: str | None = typer.Option(None, "--segment", help="Members of a segment."),
        as_json: bool = JsonOption,
    ) -> None:
        """Record the variant of everyone in the audience; recorded people keep theirs."""
        if anonymous and not everyone:
            raise InvalidInput(
                "--anonymous widens --all only.",
                field="--anonymous",
                hint="pass --all --anonymous, or list the people with --people FILE",
            )
        if sum([everyone, people is not None, segment is not None]) != 1:
            raise InvalidInput(
                "Choose exactly one audience.",
                field="audience",
                hint="pass --all, --people FILE or --segment NAME",
            )
        ids = read_people(people) if people is not None else None
        store = get_store()
        try:
            report = assign(store, name, segment=segment, people=ids, anonymous=anonymous)
        finally:
            store.dispose()
        if as_json:
            emit_json(
                {
                    "experiment": report.experiment,
                    "audience": report.audience,
                    "unknown": report.unknown,
                    "opted_out": report.opted_out,
                    "held_back": report.held_back,
                    "holdout": report.holdout,
                    "outside": report.outside,
                    "already_assigned": report.already_assigned,
                    "new": report.new,
                }
            )
            return
        console.print(
            f"{report.newly_assigned:,} newly assigned "
            f"({', '.join(f'{v}: {n:,}' for v, n in report.new.items())}); "
            f"{report.already_assigned:,} kept their variant, {report.holdout:,} in the global "
            f"holdout, {report.outside:,} outside the experiment's traffic"
            + (f", {report.unknown:,} ids not current people" if report.unknown else "")
            + (
                f", {report.opted_out:,} left out: refused marketing on {report.channel}"
                if report.opted_out
                else ""
            )
            + (
                f", {report.held_back:,} left out: paused marketing or left its topic"
                if report.held_back
                else ""
            )
            + "."
        )

    @group.command("results")
    @user_errors
    def results_command(
        name: str = typer.Argument(..., help="Experiment name."),
        alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
        sequential: bool = typer.Option(
            False, "--sequential", help="Always-valid intervals, safe to read every day."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        """Every metric of the experiment, per variant against control, from the store."""
        store = get_store()
        try:
            res = results(store, name, alpha=alpha, sequential=sequential)
        finally:
            store.dispose()
        if as_json:
            emit_json(res.payload())
        else:
            print_results(res)

    @group.command("list")
    @user_errors
    def list_command(as_json: bool = JsonOption) -> None:
        """Every saved experiment, the newest first: status and dates."""
        store = get_store()
        try:
            found = list_all(store)
        finally:
            store.dispose()
        if as_json:
            emit_json({"experiments": [e.summary() for e in found]})
            return
        for e in found:
            d = e.definition
            console.print(
                f"[bold]{d.name}[/] ({e.status}): {', '.join(v.name for v in d.variants)}, "
                f"primary {d.primary}, created {e.created_at:%Y-%m-%d %H:%M}"
            )

    @group.command("stop")
    @user_errors
    def stop_command(name: str = typer.Argument(..., help="Experiment name.")) -> None:
        """Stop assigning people; results stay readable."""
        store = get_store()
        try:
            saved = stop(store, name)
        finally:
            store.dispose()
        console.print(f"Experiment {name!r} stopped at {saved.stopped_at:%Y-%m-%d %H:%M} UTC.")


def register(app: typer.Typer) -> None:
    """Add the commands to the ``experiment`` group already on ``app`` (register after
    :mod:`surmesure.cli.experiment`), or to a new group when there is none."""
    for info in app.registered_groups:
        if info.name == "experiment" and isinstance(info.typer_instance, typer.Typer):
            register_into(info.typer_instance)
            return
    group = typer.Typer(help="Experiments: define, assign and read results.")
    app.add_typer(group, name="experiment")
    register_into(group)
