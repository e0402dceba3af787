"""Settings are read from the environment by their variables' names, typed by msgspec."""

from __future__ import annotations

import pytest

from service.infra.settings import ENV_VARS, Settings, from_env


def test_each_kind_of_value_is_read_from_its_text() -> None:
    s = from_env(
        {
            "FAIRDROP_PORT": "8101",
            "FAIRDROP_CONFIRM_DEADLINE": "2.5",
            "FAIRDROP_NOTIFY": "false",
            "FAIRDROP_REDIS_CLUSTER": "1",
            "FAIRDROP_SMTP_USER": "mailer",
            "FAIRDROP_SECRET": "s3cret",
        }
    )
    assert (s.port, s.confirm_deadline_seconds, s.notify, s.redis_cluster) == (
        8101,
        2.5,
        False,
        True,
    )
    assert (s.smtp_user, s.secret, s.secret_is_random) == ("mailer", "s3cret", False)


def test_unset_and_empty_variables_take_the_default_and_a_secret_is_drawn() -> None:
    s = from_env({"FAIRDROP_PORT": "", "DATABASE_URL": ""})
    default = Settings()
    assert (s.port, s.database_url) == (default.port, None)
    assert s.secret and s.secret_is_random


def test_a_bad_value_stops_with_one_line_naming_the_variable() -> None:
    with pytest.raises(SystemExit, match="FAIRDROP_WORKERS"):
        from_env({"FAIRDROP_WORKERS": "two"})
    with pytest.raises(SystemExit, match="FAIRDROP_NOTIFY"):
        from_env({"FAIRDROP_NOTIFY": "perhaps"})


def test_variables_that_are_not_settings_are_ignored() -> None:
    assert "secret_is_random" not in ENV_VARS
    assert from_env({"secret_is_random": "1", "FAIRDROP_SECRET": "x"}).secret_is_random is False
