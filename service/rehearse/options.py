"""What a rehearsal is asked to do: the command's options, as one frozen struct."""

from __future__ import annotations

import argparse
import secrets
from typing import Literal

import msgspec

Mode = Literal["prequeue-shuffle", "fifo", "lottery"]
Arrival = Literal["spike", "steady"]


class Refused(Exception):
    """What keeps a rehearsal from running, in words for its user (a bad option, a
    target that refuses the admin key, no nginx for --through-nginx)."""


class Options(msgspec.Struct, frozen=True, kw_only=True):
    target: str | None = None
    """A running deployment's base URL; None: start fairdrop for this run."""
    admin_key: str | None = None
    """An admin key of the target (operator suffices without staff keys)."""
    shoppers: int = 2000
    units: int = 200
    stores: int = 3
    skus: int = 2
    mode: Mode = "prequeue-shuffle"
    arrival: Arrival = "spike"
    admit_rate: float = 50.0
    """Shoppers admitted per second, as the operator sets it."""
    active_cap: int = 500
    bots: int = 8
    seed: int = 0
    out: str = "rehearsal"
    workers: int = 2
    duration: float = 180.0
    """The sale is stopped this many seconds after it starts, at the latest."""
    redis_cluster: bool = False
    through_nginx: bool = False
    crowd_processes: int = 1
    hold_seconds: int = 30
    window_seconds: int = 20
    """An admitted shopper's time to place a hold."""
    prequeue_seconds: float = 10.0
    """How long check-in is open before the sale starts."""
    limit: int = 1
    staff: bool = True
    """Staff collect a sample of the codes; the rest are released as no-shows."""
    rate_limits: bool = True
    """Off only to see what the limits hide (the servers it starts)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `rehearse` subcommand's flags (defaults from `Options`)."""
    d = Options()
    add = parser.add_argument
    add("--target", help="base URL of a running deployment (default: start one)")
    add("--admin-key", help="an admin API key of the target (needed with --target)")
    add("--shoppers", type=int, default=d.shoppers, help="verified shoppers in the crowd")
    add("--units", type=int, default=d.units, help="units on sale, spread over stores and SKUs")
    add("--stores", type=int, default=d.stores)
    add("--skus", type=int, default=d.skus)
    add("--mode", choices=["prequeue-shuffle", "fifo", "lottery"], default=d.mode)
    add("--arrival", choices=["spike", "steady"], default=d.arrival)
    add("--admit-rate", type=float, default=d.admit_rate, help="admissions per second")
    add("--active-cap", type=int, default=d.active_cap, help="admitted shoppers at once")
    add("--bots", type=int, default=d.bots, help="bots among the crowd")
    add("--seed", type=int, default=None, help="replay a rehearsal's behaviour (default: new)")
    add("--out", default=d.out, help="folder for report.html and summary.json")
    add("--workers", type=int, default=d.workers, help="worker processes it starts")
    add("--duration", type=float, default=d.duration, help="longest sale, seconds")
    add("--redis-cluster", action="store_true", help="start a three-node Redis Cluster")
    add("--through-nginx", action="store_true", help="put deploy/nginx.conf in front")
    add("--crowd-processes", type=int, default=d.crowd_processes, help="load processes")
    add("--hold-seconds", type=int, default=d.hold_seconds)
    add("--window-seconds", type=int, default=d.window_seconds, help="time to place a hold")
    add("--prequeue-seconds", type=float, default=d.prequeue_seconds)
    add("--limit", type=int, default=d.limit, help="units per customer")
    add("--no-staff", dest="staff", action="store_false", help="skip the pickup desk")
    add("--no-rate-limits", dest="rate_limits", action="store_false",
        help="servers it starts answer no 429 (to see what the limits hide)")


def from_args(args: argparse.Namespace) -> Options:
    values = {f: getattr(args, f) for f in Options.__struct_fields__ if hasattr(args, f)}
    if values.get("seed") is None:
        values["seed"] = secrets.randbelow(2**31)
    options = msgspec.convert(values, Options)
    if problem := check(options):
        raise Refused(problem)
    return options


def check(o: Options) -> str | None:
    """What is wrong with these options, in words (None: nothing)."""
    if o.target is not None and not o.admin_key:
        return "--target needs --admin-key (the launch is set up through the admin API)"
    if o.target is not None and (o.redis_cluster or o.through_nginx or not o.rate_limits):
        return (
            "--redis-cluster, --through-nginx and --no-rate-limits shape the servers it"
            " starts, not a target"
        )
    if min(o.shoppers, o.units, o.stores, o.skus, o.workers, o.crowd_processes) < 1:
        return "--shoppers, --units, --stores, --skus, --workers and --crowd-processes are ≥ 1"
    if o.admit_rate <= 0 or o.duration <= 0:
        return "--admit-rate and --duration are > 0"
    return None
