"""``fieldwatch export safety``, ``fieldwatch report`` and ``fieldwatch verify-export``.

``verify-export`` needs no app, database or server key: it imports only
shared.export_verify, so an auditor with the bundle alone can run it.
"""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext


def _fail(message: str, code: int = 2):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group("export")
def export():
    """Signed export bundles an auditor can verify offline."""


@export.command("safety")
@click.option("--from", "date_from", required=True, help="first day, e.g. 2026-11-01")
@click.option("--to", "date_to", required=True, help="last day (inclusive), e.g. 2026-11-30")
@click.option("--region", default=None, help="region code, e.g. HN")
@click.option("--team", default=None, help="team code, e.g. HN-T1")
@click.option("--worker", default=None, help="worker code, e.g. W001")
@click.option("--kind", "kinds", default="safety_check,check_in", show_default=True,
              help="record kinds, comma-separated: safety_check, check_in, repair_job")
@click.option("--with-health", is_flag=True, help="include health values (the command line runs as admin); withheld by default")
@click.option("--format", "fmt_name", type=click.Choice(["csv", "jsonl", "pdf"]), default="csv", show_default=True)
@click.option("--utc-offset", default="+07:00", show_default=True, help="the zone whose days --from and --to mean")
@click.option("--out", "out", required=True, help="a new folder, or a file ending in .zip")
@click.option("--workers", type=int, default=None, help="processes encoding records (default: CPUs; 1: this process alone)")
@click.option("--quiet", is_flag=True, help="no progress bar")
@with_appcontext
def export_safety(date_from, date_to, region, team, worker, kinds, with_health, fmt_name, utc_offset, out, workers, quiet):
    """Export safety checks and check-ins (optionally repair jobs) as a signed bundle."""
    from tqdm import tqdm

    from .errors import DomainError
    from .services import exports

    try:
        filt = exports.ExportFilter.parse(date_from, date_to, region, team, worker, kinds, utc_offset)
        who = exports.Exporter.command_line()
        total = exports.count_records(filt, who)
        with tqdm(total=total, unit="rec", disable=quiet, desc="export", file=sys.stderr) as bar:
            summary = exports.write_bundle(filt, who, fmt_name, out, with_health=with_health, progress=bar.update, workers=workers)
    except DomainError as exc:
        _fail(exc.message)
    kinds_text = ", ".join(f"{k}={v}" for k, v in sorted(summary.by_kind.items())) or "none"
    withheld = summary.manifest["withheld"]["fields"]
    click.echo(f"exported {summary.records} records ({kinds_text}) signed by {summary.devices} devices to {out}")
    click.echo(f"export id {summary.export_id}; health fields " + (f"withheld: {', '.join(withheld)}" if withheld else "included"))
    click.echo(f"export key {summary.manifest['export_key']['fingerprint']}; check with: fieldwatch verify-export {out}")


@click.command("report")
@click.option("--period", required=True, help="a month (2026-11), a day (2026-11-26) or FROM..TO (2026-11-01..2026-11-15)")
@click.option("--region", default=None, help="only this region code")
@click.option("--difficulties", "difficulties", type=click.Path(exists=True, dir_okay=False), default=None,
              help="a text file of open difficulties and proposals; lines 'HN: ...' belong to region HN")
@click.option("--utc-offset", default="+07:00", show_default=True)
@click.option("--out", "out", required=True, help="a new folder, or a file ending in .zip")
@with_appcontext
def report(period, region, difficulties, utc_offset, out):
    """The periodic report for the telecom authority (CSV and PDF, signed like an export)."""
    from .errors import DomainError
    from .services import exports, reports

    text = None
    if difficulties:
        try:
            with open(difficulties, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            _fail(f"{difficulties} is not UTF-8 text; save it as UTF-8 and run again")
    try:
        period_obj = reports.Period.parse(period, utc_offset)
        summary = reports.write_report(period_obj, exports.Exporter.command_line(), out, region=region, difficulties=text)
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"report {summary.manifest['period']['label']} for {len(summary.rows) - 1} regions written to {out}")
    click.echo(f"report id {summary.export_id}; check with: fieldwatch verify-export {out}")


@click.command("verify-export")
@click.argument("path", type=click.Path(exists=True))
@click.option("--export-key", default=None, help="the operator's export public key (base64) from /api/v1/keys; "
                                                 "without it the key the manifest names is used, with a warning")
@click.option("--workers", type=int, default=None, help="processes checking signatures (default: CPUs, at most 8; 1: this process alone)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def verify_export(path, export_key, workers, quiet):
    """Check a bundle offline: manifest signature, file hashes, device signatures, counts. Exit 1 on any failure."""
    from shared import crypto
    from shared import export_verify

    key = None
    if export_key:
        try:
            key = crypto.b64d(export_key)
        except ValueError:
            _fail("--export-key must be base64")
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(unit="rec", desc="verify", file=sys.stderr)
    try:
        result = export_verify.verify_bundle(path, key, workers=workers, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    click.echo(export_verify.render(result, path))
    sys.exit(0 if result.ok else 1)


COMMANDS = [export, report, verify_export]
