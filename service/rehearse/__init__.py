"""`fairdrop rehearse`: a whole launch played through with a simulated crowd.

It sets a launch of its own up through the admin API, imports verified shoppers,
lets the scheduler move the launch through registration close, check-in and the
draw, and sends a seeded crowd (Locust, in processes of their own) through the
waiting room, holds, confirms, cancellations and bots; then staff collect a sample.
What happened is written to `report.html` (charts as inline SVG) and `summary.json`.

- `options.py`  the command's options
- `stack.py`    the fairdrop it starts when no `--target` is given (workers, nginx,
                a Redis Cluster), and the invariants it checks in Postgres
- `setup.py`    the launch, its shoppers and staff, through the admin API
- `plan.py`     the seeded behaviour of each shopper and bot
- `crowd.py`    the load engine process (Locust); `journey.py` and `bots.py` its flows
- `monitor.py`  the launch's counters and the servers' CPU, sampled while it runs
- `analyse.py`, `sizing.py`  the summary and the sizing note
- `charts.py`, `report.py`   the report
- `run.py`      the whole rehearsal, phase by phase
"""
