"""``surmesure campaign``: validate, save, preview, send and follow campaigns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from surmesure.cli.campaign_tables import groups_table, lift_table, video_table
from surmesure.cli.common import (
    JsonOption,
    console,
    emit_json,
    emit_valid,
    emit_version,
    get_store,
    progress,
    user_errors,
)
from surmesure.config import get_settings
from surmesure.deliver import outbox, results, service
from surmesure.deliver.channels import callbacks, configured
from surmesure.deliver.channels import urls as channel_urls
from surmesure.store.engine import Store

HELP = """Campaigns: validate, save, preview, send and follow them (YAML or JSON files).

A document names an audience, the content of each channel (email, sms, paper, phone, web,
video), the
channel policy (first reachable, or best expected value) or a cascade of steps, a control
group, quiet hours, caps and costs; a send plans it with the guardrails (consent, preferences,
bounces, complaints, recent purchases, reachability, caps, control group), records each
message in the outbox and sends it once; each run also plans the cascade steps now due.
`campaign calls import` and `campaign returns import` bring back call outcomes and letters
returned undeliverable.
"""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column("messages", justify="right")
    for key, n in counts.items():
        table.add_row(escape(key), f"{n:,}")
    return table


def register(app: typer.Typer) -> None:
    campaign = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(campaign, name="campaign")

    @campaign.command("validate", help="Check a campaign file against what exists; save nothing.")
    @user_errors
    def validate_command(file: Path, as_json: bool = JsonOption) -> None:
        emit_valid(service.validate(get_store(), file).name, as_json)

    @campaign.command("save", help="Validate a campaign file and save it as a new version.")
    @user_errors
    def save_command(file: Path, as_json: bool = JsonOption) -> None:
        saved = service.save_file(get_store(), file, _now())
        emit_version(saved.name, saved.version, saved.changed, as_json, "saved")

    @campaign.command("preview", help="What one person would get from a campaign, and why.")
    @user_errors
    def preview_command(
        name: str,
        person: str = typer.Option(..., "--person", help="Person id or identifier (kind:value)."),
        as_json: bool = JsonOption,
    ) -> None:
        out = service.preview(get_store(), name, person, _now())
        if as_json:
            emit_json(out)
            return
        status, reason = out["status"], out.get("reason")
        line = f"person {out['person_id']}: [bold]{status}[/]"
        if out.get("channel") and status != "not_in_audience":
            line += f" on {out['channel']}"
        console.print(line + (f" ({escape(str(reason))})" if reason else ""))
        if out.get("why_channel"):
            console.print(f"[dim]why: {escape(out['why_channel'])}[/]")
        picked = out.get("next_best_action")
        if picked:
            console.print(
                f"variant [bold]{escape(str(picked['variant']))}[/]: {escape(picked['reason'])}"
            )
            if picked.get("arithmetic"):
                console.print(f"[dim]{escape(picked['arithmetic'])}[/]")
        content = out.get("content")
        if content:
            if content["subject"]:
                console.print(f"[bold]subject:[/] {escape(content['subject'])}")
            console.print(escape(content["text"]))

    @campaign.command(
        "send", help="Plan, record and send a campaign (NAME or FILE); run again to resume."
    )
    @user_errors
    def send_command(
        name: str,
        dry_run: bool = typer.Option(False, "--dry-run", help="Plan and count; write nothing."),
        parallel: int = typer.Option(4, "--parallel", min=1, max=64, help="Messages in flight."),
        workers: int | None = typer.Option(
            None,
            "--workers",
            min=1,
            max=64,
            help="Processes that render and hand over the messages (default "
            "SURMESURE_SEND_WORKERS, 1: this one).",
        ),
        as_json: bool = JsonOption,
    ) -> None:
        store = get_store()
        settings = get_settings()
        channels = {} if dry_run else configured(settings)
        try:
            with progress(quiet=as_json) as bar:
                films = bar.add_task("rendering films", total=None, visible=False)
                task = bar.add_task("sending", total=None)

                def rendered(done: int, total: int) -> None:
                    bar.update(films, completed=done, total=total, visible=True)

                report = service.send(
                    store,
                    name,
                    _now(),
                    dry_run=dry_run,
                    channels=channels,
                    parallel=parallel,
                    workers=workers or settings.send_workers,
                    urls=channel_urls(settings),
                    on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                    on_render=rendered,
                )
        finally:
            for channel in channels.values():
                channel.close()
        payload: dict[str, Any] = report.to_dict()
        if as_json:
            emit_json(payload)
            return
        if payload["plan"]:
            console.print(_counts_table(f"{payload['campaign']}: plan", payload["plan"]))
        else:
            console.print(
                f"{payload['campaign']}: nobody new to plan "
                f"({payload['already_planned']:,} planned before)"
            )
        if payload["films_rendered"]:
            console.print(f"films rendered: {payload['films_rendered']:,}")
        if payload["sent"]:
            console.print(_counts_table("sent now", payload["sent"]))
        elif payload["sent"] is not None:
            console.print("nothing due to send now (`campaign status` shows what waits)")
        for channel in payload["channels_not_configured"] or []:
            console.print(f"[yellow]{channel}: no channel configured; its messages wait[/]")

    for verb, act, done, text in (
        ("pause", outbox.pause, "paused", "Hold back a campaign's messages that have not left."),
        ("resume", outbox.resume, "resumed", "Let a paused campaign's messages leave again."),
    ):
        campaign.command(verb, help=text)(_pausing(act, done))

    @campaign.command(
        "render-videos",
        help="Render the films of a campaign's planned messages that show one (the video "
        "channel, {{ video_link }}, {{ video_poster }}) ahead of `campaign send`, which "
        "renders those still missing.",
    )
    @user_errors
    def render_videos_command(name: str, as_json: bool = JsonOption) -> None:
        store = get_store()
        with progress(quiet=as_json) as bar:
            task = bar.add_task("rendering films", total=None)
            made = service.render_videos(
                store,
                name,
                _now(),
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        if as_json:
            emit_json({"campaign": name, "films_rendered": made})
            return
        console.print(f"{name}: {made:,} films rendered")

    @campaign.command("status", help="A campaign's outbox: by status, channel and reason.")
    @user_errors
    def status_command(name: str, as_json: bool = JsonOption) -> None:
        out = service.status(get_store(), name)
        if as_json:
            emit_json(out)
            return
        console.print(_counts_table(f"{name} (version {out['version']})", out["by_status"]))
        if out["reasons"]:
            console.print(_counts_table("why not sent", out["reasons"]))
        console.print(_nested_table("by channel", "channel", out["by_channel"]))
        if len(out["by_step"]) > 1:
            console.print(_nested_table("by cascade step", "step", out["by_step"]))
        console.print(f"cost: {out['cost']:.2f}")

    @campaign.command(
        "results",
        help="What a campaign did: per channel, treated against the control group, with 95% "
        "intervals, p-values, cost and ROI; --by breaks it down per segment or cluster.",
    )
    @user_errors
    def results_command(
        name: str,
        by: list[str] = typer.Option(
            [], "--by", help="A saved segment, or a discovery prefix (cluster); repeatable."
        ),
        plot: Path | None = typer.Option(
            None, "--plot", help="Write the lift with its interval per group (PNG or SVG)."
        ),
        as_json: bool = JsonOption,
    ) -> None:
        out = results.measure(get_store(), name, by)
        if plot is not None:
            results.plot(out, plot)
        if as_json:
            emit_json(out)
            return
        console.print(groups_table(out))
        console.print(lift_table(out["comparisons"], "channel", f"against {out['baseline']}"))
        if "video" in out:
            console.print(video_table(out["video"]))
        if "breakdown" in out:
            title = "by segment (p adjusted: Benjamini-Hochberg)"
            console.print(lift_table(out["breakdown"], "segment", title))
        if "variants" in out:
            rows = [
                r | {"variant (action)": f"{r['variant']} ({r['action']})"} for r in out["variants"]
            ]
            title = "per variant its template's next best action chose"
            console.print(lift_table(rows, "variant (action)", title))
        if plot is not None:
            console.print(f"plot: {plot}")

    @campaign.command(
        "gateways",
        help="The addresses providers call back with their keys: bounces and complaints "
        "(e-mail), replies and delivery reports (Kannel).",
    )
    @user_errors
    def gateways_command(as_json: bool = JsonOption) -> None:
        settings = get_settings()
        out = callbacks(settings)
        if as_json:
            emit_json(out)
            return
        for key, value in out.items():  # one line each, to copy whole
            console.print(f"{key}: {escape(value)}", soft_wrap=True)
        if "SURMESURE_SECRET_KEY" in settings.development_defaults():
            console.print("[yellow]SURMESURE_SECRET_KEY is the development one: set your own[/]")

    _register_imports(campaign)


def _register_imports(campaign: typer.Typer) -> None:
    """``campaign calls import`` and ``campaign returns import``: what comes back."""
    calls = typer.Typer(help="The call centre's outcomes, brought back.", no_args_is_help=True)
    returns = typer.Typer(help="Letters returned undeliverable.", no_args_is_help=True)
    campaign.add_typer(calls, name="calls")
    campaign.add_typer(returns, name="returns")

    @calls.command(
        "import",
        help="Import call outcomes (CSV: person_id, outcome, called_at, message_id): each is "
        "an event on the person, an opt-out a refusal of phone marketing; bad rows go to the "
        "quarantine with their reason.",
    )
    @user_errors
    def calls_import(file: Path, as_json: bool = JsonOption) -> None:
        from surmesure.deliver.calls import import_outcomes

        done = import_outcomes(get_store(), file).to_dict()
        _imported(done, as_json)

    @returns.command(
        "import",
        help="Import undeliverable returns (CSV: message_id, reason, returned_at): the postal "
        "address is skipped by the next campaigns; bad rows go to the quarantine.",
    )
    @user_errors
    def returns_import(file: Path, as_json: bool = JsonOption) -> None:
        from surmesure.deliver.returns import import_returns

        _imported(import_returns(get_store(), file).to_dict(), as_json)


def _pausing(act: Callable[[Store, str, datetime], int], done: str) -> Callable[..., None]:
    """The command that pauses or resumes (``act``) campaign NAME, saying how many
    messages it ``done``."""

    @user_errors
    def command(name: str, as_json: bool = JsonOption) -> None:
        store = get_store()
        messages = act(store, service.known(store, name), _now())
        if as_json:
            emit_json({"campaign": name, done: messages})
            return
        console.print(f"{escape(name)}: {messages:,} messages {done}")

    return command


def _imported(done: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(done)
        return
    for key, value in done.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:,}" for k, v in value.items()) or "nothing"
        console.print(f"{key}: {value}")
    if done.get("quarantined"):
        console.print("[yellow]bad rows are in the quarantine: `surmesure quarantine list`[/]")


def _nested_table(title: str, label: str, rows: dict[str, dict[str, int]]) -> Table:
    table = Table(title=title)
    table.add_column(label)
    table.add_column("counts")
    for key, counts in rows.items():
        table.add_row(key, ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return table
