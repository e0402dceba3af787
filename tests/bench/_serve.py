"""`fairdrop serve` with the benchmarks' baselines mounted (`tests/bench/_asgi.py`):
`python -m tests.bench._serve`, configured by the environment as `fairdrop serve` is."""

from service.cli.serving import serve
from service.infra.settings import from_env

if __name__ == "__main__":
    serve(from_env(), target="tests.bench._asgi:app")
