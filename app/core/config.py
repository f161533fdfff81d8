"""All of sftlab's settings, read once from `SFTLAB_*` variables.

app/ and worker/ share this class so a worker started with the same environment
sees the same database, broker and data directory as the web server.
"""

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SFTLAB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"), description="Uploads, run directories, the SQLite file, the broker file."
    )
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    broker_url: str = Field(
        "", description="Celery broker; empty means the embedded SQLite broker in data_dir."
    )
    secret_key: str = Field(
        "",
        description="Signs session cookies and CSRF tokens; empty: a random key kept in data_dir/secret_key.",
    )
    upload_max_bytes: int = Field(2 * 1024**3, description="Largest accepted upload.")
    max_line_bytes: int = Field(
        4 * 1024**2,
        description="A longer line (or a Parquet row larger once read) in an upload is reported as oversized.",
    )
    max_body_bytes: int = Field(
        8 * 1024**2,
        description="Largest request body other than an upload (JSON, forms): twice max_line_bytes, so a "
        "record as large as an import accepts can still be edited.",
    )
    upload_max_expanded_bytes: int = Field(
        8 * 1024**3,
        description="What one upload may expand to once read (Parquet strings); reading stops past it.",
    )
    model_dir: Path = Field(
        Path.home() / ".cache" / "sftlab" / "models" / "SmolLM2-135M-Instruct",
        description="The embedded model converted to a HF directory (tokenizer.json is what app/ reads).",
    )
    cookie_secure: bool = Field(False, description="Set the Secure flag on cookies (behind HTTPS).")
    session_max_age: int = Field(14 * 24 * 3600, description="Seconds a login lasts.")
    run_queues: list[str] = Field(
        ["cpu"], description="Queues offered on the run form; a worker serves some with `-Q`."
    )
    heartbeat_interval: float = Field(5.0, description="Seconds between a running job's heartbeats.")
    heartbeat_timeout: float = Field(
        30.0, description="A running job whose heartbeat is older than this is marked lost by the reaper."
    )
    reaper_interval: float = Field(
        10.0, description="Seconds between two reaper passes (0: no reaper thread)."
    )
    tail_interval: float = Field(
        0.1,
        description="Seconds between two reads of a job's growing events file: the floor of the live run page's delay.",
    )
    cancel_grace: float = Field(
        5.0, description="Seconds between SIGTERM and SIGKILL when a job is cancelled."
    )
    resend_interval: float = Field(
        60.0,
        description="Seconds after which a still-queued job's message is sent again (then doubling, at most hourly).",
    )
    interactive_queue: str = Field(
        "interactive", description="Queue of the short jobs a page waits for (estimates, sample rendering)."
    )
    interactive_limit: int = Field(
        8, description="Short jobs queued or running at once before a request is answered 429."
    )
    hub_downloads: bool = Field(
        False, description="Accept base models by hub id that are not in the local Hugging Face cache."
    )
    job_kinds: list[str] = Field(
        [],
        description="Extra modules the worker imports to register job kinds (each calls worker.kinds.register).",
    )
    db_pool_size: int = Field(
        20,
        description="Database connections a process keeps; the web server lets this many requests hold a "
        "session at once (the others wait without blocking), plus 10 for other work.",
    )
    db_pre_ping: bool = Field(
        True,
        description="Test each pooled PostgreSQL connection with a round trip before use, so a database "
        "restart fails no request or job. Off saves that round trip per request (bench/load.py), and a "
        "connection the server dropped then fails whatever uses it at that moment.",
    )
    fake_gpus: str = Field(
        "",
        description="Comma-separated GPU names a worker reports and hands out instead of asking nvidia-smi "
        "(tests, demos of the GPU queues on a CPU machine); empty: detect.",
    )
    gpu_wait_interval: float = Field(
        10.0, description="Seconds between two tries of a run waiting for free GPUs on its worker's host."
    )
    trainer_threads: int = Field(
        0, description="OMP/torch threads per CPU trainer rank (0: torch's default)."
    )
    live_interval: float = Field(
        0.1, description="Seconds between two checks of a run's events_seq by each live stream of its page."
    )
    live_keepalive: float = Field(
        15.0,
        description="Seconds of silence after which a live stream sends a comment (proxies drop idle ones).",
    )
    live_lifetime: float = Field(
        600.0,
        description="Seconds a live stream stays open; the browser's EventSource then reconnects by itself.",
    )
    live_streams: int = Field(
        8,
        description="Live run-page streams open at once in a process; beyond it pages are answered 503 and "
        "poll every second instead. Each holds one of db_pool_size request slots, so keep it well below that.",
    )

    sampling_module: str = Field(
        "trainer.sample",
        description="The module a sampling job runs as `python -m <module> --spec spec.json` (tests point it "
        "at a fake that follows the same contract).",
    )
    vllm_python: Path = Field(
        Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python",
        description="The interpreter of sampling jobs with the vllm backend: a separate environment, since "
        "vLLM pins its own torch and transformers.",
    )
    sampling_queue: str = Field("cpu", description="Queue sampling jobs are sent to.")
    rating_abandon_after: float = Field(
        1800.0,
        description="Seconds a rater may hold a claimed case without answering; after that the next rater "
        "asking for work in the task takes it back into the pool.",
    )

    @model_validator(mode="after")
    def _secret_from_data_dir(self) -> "Settings":
        # A fixed default key would let anyone who read the source forge cookies on every install.
        if not self.secret_key:
            self.secret_key = _data_dir_secret(self.data_dir)
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'sftlab.db').resolve()}"

    @property
    def celery_broker(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    @property
    def celery_backend(self) -> str:
        if self.broker_url.startswith("redis://"):
            return self.broker_url
        return f"db+sqlite:///{(self.data_dir / 'results.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def tokenizer_path(self) -> Path:
        return self.model_dir / "tokenizer.json"


def _data_dir_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        os.replace(tmp, path)
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
