"""Without SFTLAB_SECRET_KEY, each install gets its own random key, kept across restarts."""

from app.core.config import Settings


def test_secret_key_is_generated_once_per_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("SFTLAB_SECRET_KEY", raising=False)
    first = Settings(data_dir=tmp_path / "a")
    again = Settings(data_dir=tmp_path / "a")
    other = Settings(data_dir=tmp_path / "b")
    assert len(first.secret_key) >= 40
    assert first.secret_key == again.secret_key
    assert first.secret_key != other.secret_key
    assert (tmp_path / "a" / "secret_key").stat().st_mode & 0o077 == 0


def test_explicit_secret_key_wins(tmp_path):
    assert Settings(data_dir=tmp_path, secret_key="given").secret_key == "given"
    assert not (tmp_path / "secret_key").exists()
