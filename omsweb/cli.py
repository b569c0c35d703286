"""``oms``: run the whole OMS (``oms up``) or any one part of it.

    oms up                         services, migrations, demo data, then every process
                                   (``processes()``) under supervisord, which restarts
                                   any that dies (omsweb/procmgr.py)
    oms services [--stop]          embedded PostgreSQL + Redis (only where *_URL unset)
    oms web                        ASGI server: REST API, admin, blotter, WebSocket
    oms worker --queues Q[,Q] [--beat] [--concurrency N]
    oms worker --venue NAME        the venue calls of one venue, on a worker of its own
    oms simex --name sim-a --port 8101 [--replay FILE [--speed X] [--loop]] [--fix-port 8113]
                                   a simulated venue (and its FIX 4.4 port); with --replay
                                   its book follows a recording (docs/BACKTEST.md)
    oms synth --out FILE [--symbol BTC/USDT] [--minutes N] [--seed S]
                                   write a synthetic recording (backtest/synth.py)
    oms fixvenue --venue NAME      the FIX 4.4 session of a ``fix`` venue (one per venue)
    oms venuestream                venue order and trade updates into the OMS
    oms marketdata [--record DIR]  venue books and their states into Redis
    oms fixgw [--host H] [--port P] FIX 4.4 order-entry gateway (OMS_FIX_PORT, default 9878)
    oms manage ARGS...             any Django management command
    oms kill [--scope S --target T] [--state HALTED|REDUCING|ACTIVE] --reason WHY
                                   kill switch (see risk/management/commands/killswitch.py)
    oms backtest --data FILE --strategy module:Class [--param k=v] [--config FILE]
                 [--latency-ms N] [--seed N] [--router R] [--out DIR]
                                   replay recordings through the OMS's rules (backtest/);
                                   needs no database, Redis or Django
    oms audit verify [--heads LOG]  recompute the audit trail's hash chains and check the
                                   venue, limit and trading-state rows against their last
                                   audited change (exit 1 on a break); LOG: a log holding
                                   exported heads to check too

Each part is a plain process, so an operator can run many of them on many machines
against one PostgreSQL and one Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

WORKERS = {
    # name: (queues, concurrency, beat)
    "urgent": ("oms.urgent", 1, False),
    # reports and parent routing rounds: neither calls a venue
    "reports": ("oms.reports,oms.route", 2, False),
    "recon": ("oms.recon", 1, True),
}
# Plus one worker per venue for its venue calls (submit, amend, re-send): a slow venue
# delays only its own orders (docs/RELIABILITY.md, "One slow venue").
VENUE_WORKER_CONCURRENCY = 2


def venue_workers(venues: list[str]) -> dict[str, tuple[str, int, bool]]:
    """``WORKERS``-shaped entries for the venues named: ``orders-NAME`` on its queue."""
    from omsweb.celery import venue_queue

    return {f"orders-{v}": (venue_queue(v), VENUE_WORKER_CONCURRENCY, False) for v in venues}


def _enabled_venues(driver: str | None = None) -> tuple[str, ...]:
    from venues.models import Venue

    rows = Venue.objects.filter(enabled=True)
    if driver is not None:
        rows = rows.filter(driver=driver)
    return tuple(rows.values_list("name", flat=True))


SIM_VENUES = {"sim-a": 8101, "sim-b": 8102}


def _home() -> Path:
    return Path(os.environ.get("OMS_HOME") or Path.cwd() / ".oms").resolve()


def _prepare_env() -> Path:
    """Point every child at the same database and Redis: start embedded ones if needed."""
    from omsweb import embedded

    home = _home()
    os.environ["OMS_HOME"] = str(home)
    embedded.ensure_environment(home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omsweb.settings")
    _simex_credentials(home)
    return home


def _simex_credentials(home: Path) -> dict[str, str]:
    """The demo's simulated venues and the workers share one generated API key: the
    venues' own variables (``OMS_VENUE_SIM_A_KEY``...) carry it to the OMS's processes."""
    from venues.credentials import env_name

    path = home / "simex.json"
    if not path.exists():
        # Several processes of a fresh OMS_HOME start at once: the file appears whole or
        # not at all (written aside, then linked: the first one wins, the others read it)
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / f".simex.json.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.write_text(json.dumps({"key": secrets.token_hex(16), "secret": secrets.token_hex(32)}))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    creds = json.loads(path.read_text())
    from venues.sim.server import DEMO_FIX_VENUE

    for name in (*SIM_VENUES, DEMO_FIX_VENUE[0]):
        os.environ.setdefault(env_name(name, "api_key_env"), creds["key"])
        os.environ.setdefault(env_name(name, "secret_env"), creds["secret"])
    return creds


def _django() -> None:
    import django

    django.setup()


def _exec(argv: list[str]) -> None:
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def _python() -> str:
    return sys.executable


# Web server processes. One on the 2-core machine: with a lean order path a single
# process accepts about 95 orders/s from 16 clients, and a second one accepts no more but
# takes CPU from the Celery workers (end to end 84 -> 72 orders/s, acks later). On more
# cores, raise OMS_WEB_WORKERS; WebSockets work across processes (the Redis channel
# layer carries every push).
DEFAULT_WEB_WORKERS = 1


def web_workers() -> int:
    """``OMS_WEB_WORKERS`` (see ``ENV_VARS`` in omsweb/settings.py), checked."""
    raw = (os.environ.get("OMS_WEB_WORKERS") or "").strip()
    if not raw:
        return DEFAULT_WEB_WORKERS
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"OMS_WEB_WORKERS must be a whole number >= 1, not {raw!r}")
    return int(raw)


def web_argv(
    host: str | None = None, port: int | None = None, workers: int | None = None
) -> list[str]:
    host = host or os.environ.get("OMS_WEB_HOST", "127.0.0.1")
    port = port or int(os.environ.get("OMS_WEB_PORT", "8000"))
    workers = workers or web_workers()
    argv = [
        _python(), "-m", "uvicorn", "omsweb.asgi:application",
        "--host", host, "--port", str(port),
        "--no-access-log", "--lifespan", "off", "--timeout-graceful-shutdown", "5",
        "--no-proxy-headers",  # the client address is the connection's (login lock-out)
    ]  # fmt: skip
    if workers > 1:
        # a supervisor process and ``workers`` children; SIGTERM to the supervisor
        # stops them all (and omsweb/asgi.py makes a child exit if it is killed)
        argv += ["--workers", str(workers)]
    return argv


def worker_argv(queues: str, *, name: str, concurrency: int, beat: bool) -> list[str]:
    argv = [
        _python(), "-m", "celery", "-A", "omsweb", "worker",
        "-Q", queues, "-n", f"{name}@%h", "-c", str(concurrency),
        "--without-gossip", "--without-mingle", "-l", "INFO",
    ]  # fmt: skip
    if beat:
        argv += ["--beat", "-s", str(_home() / "celerybeat-schedule")]
    return argv


# With OMS_DEMO_REPLAY=1 the demo venues replay these recordings, generated once under
# OMS_HOME/replay by the project's own synthetic market (no third-party data): ten
# minutes each, looped. Both venues replay the same market; their fees and latency differ.
DEMO_RECORDINGS = {"BTC/USDT": 101, "ETH/USDT": 102}  # symbol: seed
DEMO_RECORDING_MINUTES = 10.0


def demo_replay() -> bool:
    """``OMS_DEMO_REPLAY`` (see ``ENV_VARS`` in omsweb/settings.py), checked."""
    raw = (os.environ.get("OMS_DEMO_REPLAY") or "0").strip().lower()
    if raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise SystemExit(f"OMS_DEMO_REPLAY must be 0 or 1, not {raw!r}")
    return raw in ("1", "true", "yes", "on")


def demo_recordings(home: Path) -> list[Path]:
    """The demo's recordings under ``home/replay``, written when missing (a few seconds)."""
    from backtest.synth import SynthConfig, write_recording

    paths = []
    for symbol, seed in DEMO_RECORDINGS.items():
        path = home / "replay" / f"{symbol.replace('/', '').lower()}_demo_{seed}.gz"
        if not path.exists():
            print(f"writing the demo recording {path} ...", flush=True)
            write_recording(
                path, SynthConfig(symbol=symbol, minutes=DEMO_RECORDING_MINUTES, seed=seed)
            )
        paths.append(path)
    return paths


def processes(
    *,
    host: str,
    port: int,
    sim: bool = True,
    venues: tuple[str, ...] = tuple(SIM_VENUES),
    replay: tuple[Path, ...] = (),
    fix_venues: tuple[str, ...] = (),
    sim_fix: bool = False,
) -> dict[str, list[str]]:
    """Every process ``oms up`` runs, by name: the one table of them (a new kind of
    process adds its entry here), with a worker for each of ``venues`` (``oms up``: the
    enabled ones) and a FIX session (``fixvenue-NAME``) for each of ``fix_venues`` (the
    enabled ``fix`` ones); ``sim_fix``: the demo's FIX simulator too. The process
    manager (``omsweb/procmgr.py``) restarts any of them that dies. ``replay``:
    recordings the simulated venues follow (looped)."""
    procs: dict[str, list[str]] = {}
    if sim:
        replay_args = [a for path in replay for a in ("--replay", str(path))]
        if replay_args:
            replay_args.append("--loop")
        for name, sim_port in SIM_VENUES.items():
            procs[name] = [_python(), "-m", "omsweb.cli", "simex", "--name", name,
                           "--port", str(sim_port), *replay_args]  # fmt: skip
        if sim_fix:
            from venues.sim.server import DEMO_FIX_VENUE

            name, sim_port, fix_port = DEMO_FIX_VENUE
            procs[name] = [_python(), "-m", "omsweb.cli", "simex", "--name", name,
                           "--port", str(sim_port), "--fix-port", str(fix_port),
                           *replay_args]  # fmt: skip
    for name in fix_venues:
        procs[f"fixvenue-{name}"] = [_python(), "-m", "omsweb.cli", "fixvenue", "--venue", name]
    procs["web"] = web_argv(host, port)
    for name, (queues, concurrency, beat) in {
        **WORKERS,
        **venue_workers(list(venues)),
    }.items():
        procs[f"worker-{name}"] = worker_argv(queues, name=name, concurrency=concurrency, beat=beat)
    procs["fixgw"] = [_python(), "-m", "omsweb.cli", "fixgw"]
    if _has_venuestream():
        procs["venuestream"] = [_python(), "-m", "omsweb.cli", "venuestream"]
    procs["marketdata"] = [_python(), "-m", "omsweb.cli", "marketdata"]
    return procs


def cmd_up(args: argparse.Namespace) -> int:
    import shutil
    import signal
    import subprocess

    from omsweb import embedded, procmgr

    home = _home()
    # Embedded services this command starts are stopped when it stops (Ctrl-C); ones
    # that were already running (`oms services`) are left running.
    own_services = not os.environ.get("DATABASE_URL") and not embedded.running(home)
    home = _prepare_env()
    # counters start from zero with the processes that count them
    shutil.rmtree(procmgr.metrics_dir(home), ignore_errors=True)
    _django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from omsweb.demo import load_demo

    created = load_demo(home)
    from django.conf import settings

    host = os.environ.get("OMS_WEB_HOST", "127.0.0.1")
    port = int(os.environ.get("OMS_WEB_PORT", "8000"))
    creds = json.loads((home / "credentials.json").read_text())
    print(f"\nOMS at http://{host}:{port}/  (admin: /admin/, API docs: /api/docs/)")
    if created:
        print("First start: users created; passwords and API tokens (saved once to")
        print(f"  {home / 'credentials.json'}, mode 0600):")
        for user, c in creds.items():
            print(f"  {user:7s} password {c['password']}  token {c['token']}")
    else:
        print(f"Logins: {home / 'credentials.json'} (admin, risk, trader)")
    replay = tuple(demo_recordings(home)) if demo_replay() and not args.no_sim else ()
    if replay:
        print("Demo venues replay market recordings (OMS_DEMO_REPLAY=1): "
              + ", ".join(p.name for p in replay))  # fmt: skip
    config = procmgr.write_config(
        home,
        processes(
            host=host,
            port=port,
            sim=not args.no_sim,
            venues=_enabled_venues(),
            fix_venues=_enabled_venues(driver="fix"),
            sim_fix=settings.DEMO_FIX_VENUE,
            replay=replay,
        ),
        directory=Path.cwd(),
    )
    supervisorctl = Path(sys.executable).parent / "supervisorctl"
    print(f"Processes: {supervisorctl} -c {config} status")
    print("Ctrl-C stops everything.\n", flush=True)

    # supervisord in a session of its own: Ctrl-C reaches only this process, which then
    # stops supervisord, which stops every process in order (no process sees SIGINT
    # half-way through and is restarted while the rest stop).
    supervisor = subprocess.Popen(procmgr.supervisord_argv(config), start_new_session=True)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            print("\nstopping every process...", flush=True)
            procmgr.stop(home, supervisor.pid)

    previous = {
        s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        code = supervisor.wait()
    finally:
        if supervisor.poll() is None:
            procmgr.stop(home, supervisor.pid)
        for s, handler in previous.items():
            signal.signal(s, handler)
        if own_services:
            embedded.stop_services(home)
            print("embedded PostgreSQL and Redis stopped", flush=True)
    return 0 if stopping else code


def _has_venuestream() -> bool:
    try:
        import orders.stream  # noqa: F401
    except ImportError:
        return False
    return True


def cmd_services(args: argparse.Namespace) -> int:
    from omsweb import embedded

    home = _home()
    if args.stop:
        embedded.stop_services(home)
        print(f"stopped embedded services under {home}")
        return 0
    _prepare_env()
    print(f"DATABASE_URL={os.environ['DATABASE_URL']}")
    print(f"REDIS_URL={os.environ['REDIS_URL']}")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    _prepare_env()
    _exec(web_argv(args.host, args.port))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    _prepare_env()
    if args.venue:
        ((default_name, (queues, concurrency, _)),) = venue_workers([args.venue]).items()
        concurrency = args.concurrency or concurrency
    elif args.queues:
        queues, concurrency = args.queues, args.concurrency or 2
        default_name = queues.split(",")[0].replace("oms.", "")
    else:
        raise SystemExit("oms worker: give --queues or --venue")
    name = args.name or default_name
    _exec(worker_argv(queues, name=name, concurrency=concurrency, beat=args.beat))
    return 0


def cmd_simex(args: argparse.Namespace) -> int:
    creds = _simex_credentials(_home())
    from venues.sim.server import DEMO_VENUE_ARGS
    from venues.sim.server import main as simex_main

    argv = ["--name", args.name, "--port", str(args.port), "--host", args.host]
    argv += ["--api-key", creds["key"], "--api-secret", creds["secret"]]
    for path in args.replay:
        argv += ["--replay", path]
    if args.replay:
        argv += ["--speed", str(args.speed)] + (["--loop"] if args.loop else [])
    if args.fix_port is not None:
        store = _home() / "fix" / f"simex-{args.name}"
        argv += ["--fix-port", str(args.fix_port), "--fix-store", str(store)]
    simex_main(argv + DEMO_VENUE_ARGS.get(args.name, []) + args.extra)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from backtest.synth import SynthConfig, write_recording

    try:
        mid = Decimal(args.mid) if args.mid else None
    except InvalidOperation:
        raise SystemExit(f"oms synth: --mid must be a number, not {args.mid!r}") from None
    config = SynthConfig(symbol=args.symbol, minutes=args.minutes, seed=args.seed, mid=mid)
    out = Path(args.out)
    try:
        lines = write_recording(out, config)
    except ValueError as exc:
        raise SystemExit(f"oms synth: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"oms synth: cannot write {out}: {exc.strerror or exc}") from None
    print(f"{out}: {lines} lines, {args.minutes:g} minutes of {args.symbol} (seed {args.seed})")
    return 0


def cmd_fixgw(args: argparse.Namespace) -> int:
    home = _prepare_env()
    _django()
    from django.conf import settings

    from fixgw.gateway import main as fixgw_main

    fixgw_main(host=args.host or settings.FIX_HOST, port=args.port or settings.FIX_PORT, home=home)
    return 0


def cmd_fixvenue(args: argparse.Namespace) -> int:
    home = _prepare_env()
    _django()
    from omsweb.redis_client import blocking_client
    from venues import credentials
    from venues.fix_session import SessionConfig, run
    from venues.models import Venue
    from venues.validation import fix_problems

    venue = Venue.objects.filter(name=args.venue).first()
    if venue is None or venue.driver != Venue.Driver.FIX:
        raise SystemExit(f"oms fixvenue: no fix venue named {args.venue!r}")
    problems = fix_problems(venue)
    if problems:
        raise SystemExit(f"oms fixvenue: venue {venue.name}: {problems}")
    try:
        username = credentials.read(venue.name, "api_key_env", venue.api_key_env)
        password = credentials.read(venue.name, "secret_env", venue.secret_env)
    except (credentials.CredentialNameError, KeyError) as exc:
        raise SystemExit(f"oms fixvenue: venue {venue.name}: credentials: {exc}") from None
    assert venue.fix_port is not None  # fix_problems
    config = SessionConfig(
        venue=venue.name,
        host=venue.fix_host,
        port=venue.fix_port,
        sender_comp_id=venue.sender_comp_id,
        target_comp_id=venue.target_comp_id,
        store_dir=home / "fix" / f"venue-{venue.name}",
        username=username,
        password=password,
    )
    run(config, blocking_client())
    return 0


def cmd_venuestream(args: argparse.Namespace) -> int:
    _prepare_env()
    _django()
    from orders.stream import main as stream_main

    stream_main()
    return 0


def cmd_marketdata(args: argparse.Namespace) -> int:
    _prepare_env()
    _django()
    from marketdata.handler import main as marketdata_main

    marketdata_main(args.kill_args)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    _prepare_env()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["oms", *args.args])
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    _prepare_env()
    _django()
    from django.core.management import call_command

    call_command("killswitch", *args.kill_args)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    _prepare_env()
    _django()
    from audit.verify import parse_heads
    from orders.chain import verify
    from risk.audited import verify_current as risk_rows
    from venues.changes import verify_current as venue_rows

    exported = []
    if args.heads:
        with open(args.heads, encoding="utf-8", errors="replace") as log:
            exported = parse_heads(log)
    breaks = verify(exported=exported)
    unaudited = 0
    for check in (risk_rows, venue_rows):  # the current rows against their last record
        found_rows, never = check()
        breaks += found_rows
        unaudited += never
    for found in breaks:
        print(f"BROKEN {found}")
    if unaudited:
        print(f"note: {unaudited} venue, limit or trading-state row(s) never audited "
              "(created before the trail or by the set-up)")  # fmt: skip
    checked = f"; {len(exported)} exported head(s) checked" if args.heads else ""
    if breaks:
        print(f"audit trail: {len(breaks)} break(s){checked}")
        return 1
    print(f"audit trail: every chain holds{checked}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    """Pure: no embedded services, no Django settings (backtest/command.py)."""
    from backtest.command import main as backtest_main

    return backtest_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oms", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="run the whole OMS with demo data")
    p.add_argument("--no-sim", action="store_true", help="do not start the simulated venues")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("services", help="start (or --stop) embedded PostgreSQL and Redis")
    p.add_argument("--stop", action="store_true")
    p.set_defaults(func=cmd_services)

    p = sub.add_parser("web", help="ASGI server")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("worker", help="a Celery worker")
    p.add_argument("--queues", help="e.g. oms.reports or oms.urgent")
    p.add_argument("--venue", help="the venue calls of this venue (queue oms.orders.VENUE)")
    p.add_argument("--beat", action="store_true", help="also run the periodic scheduler")
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--name", default=None)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("simex", help="the built-in simulated exchange")
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--replay", action="append", default=[], metavar="FILE",
                   help="the book follows this recording (docs/BACKTEST.md)")  # fmt: skip
    p.add_argument("--speed", type=float, default=1.0, help="replay speed")
    p.add_argument("--loop", action="store_true", help="replay the recording again and again")
    p.add_argument("--fix-port", type=int, default=None, help="also speak FIX 4.4 here")
    p.add_argument("extra", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_simex)

    p = sub.add_parser("synth", help="write a synthetic market recording (feed format)")
    p.add_argument("--out", required=True, help="file to write (.gz: gzip)")
    p.add_argument("--symbol", default="BTC/USDT")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mid", default=None, help="start price (default: the symbol's usual)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("fixvenue", help="the FIX 4.4 session of a fix venue")
    p.add_argument("--venue", required=True)
    p.set_defaults(func=cmd_fixvenue)

    p = sub.add_parser("fixgw", help="the FIX 4.4 order-entry gateway")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_fixgw)

    p = sub.add_parser("venuestream", help="follow venues' order updates and books")
    p.set_defaults(func=cmd_venuestream)

    # options are parsed by marketdata/handler.py; `oms marketdata --help` lists them
    p = sub.add_parser("marketdata", help="venue books and their states into Redis", add_help=False)
    p.set_defaults(func=cmd_marketdata)

    p = sub.add_parser("manage", help="a Django management command")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)

    # options are parsed by the killswitch command; `oms kill --help` lists them
    p = sub.add_parser("kill", help="engage/release the kill switch", add_help=False)
    p.set_defaults(func=cmd_kill)

    p = sub.add_parser("backtest", help="replay recordings through the OMS's own rules")
    from backtest.command import add_arguments as backtest_arguments

    backtest_arguments(p)
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("audit", help="the tamper-evident audit trail")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    v = audit_sub.add_parser("verify", help="recompute every hash chain; exit 1 on a break")
    v.add_argument("--heads", metavar="LOG", help="a log with exported heads (event=audit_head)")
    v.set_defaults(func=cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> None:
    args, rest = build_parser().parse_known_args(argv)
    if args.command not in ("kill", "marketdata") and rest:
        build_parser().parse_args(argv)  # the usual error for unknown arguments
    args.kill_args = rest  # the options of the commands that parse their own
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
