"""One settings object: defaults for demo, loud on bad values."""

import pytest

from portal.settings import Settings, SettingsError

BASE = {"SECRET_KEY": "k" * 40, "DATA_DIR": "/tmp/portal-settings-test"}


def make(**env):
    return Settings.from_env({**BASE, **env}, dotenv=None)


def test_defaults_are_the_documented_ones():
    s = make()
    assert (s.port, s.timezone, s.currency, s.gym_name) == (8000, "Africa/Nairobi", "KES", "Paul's Tropical Fitness")
    assert s.database_url == "" and s.queue_url == "" and not s.demo and not s.sandbox
    assert s.daraja_base_url == "https://api.safaricom.co.ke"
    assert s.public_base_url == "http://127.0.0.1:8000"


def test_sandbox_points_every_gateway_at_the_simulators():
    s = make(SANDBOX="1", SANDBOX_PORT="9001")
    assert s.daraja_base_url == "http://127.0.0.1:9001"
    assert s.flutterwave_base_url == "http://127.0.0.1:9001/v3"
    assert s.at_base_url == "http://127.0.0.1:9001"


@pytest.mark.parametrize("env, message", [
    ({"PORT": "eighty"}, "PORT='eighty': expected a whole number"),
    ({"PORT": "70000"}, "PORT=70000: expected between 1 and 65535"),
    ({"DEMO": "maybe"}, "DEMO='maybe': expected true/false"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL='mysql://x': expected a URL starting with postgres or postgresql://"),
    ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE='Mars/Olympus': not a known time zone"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY: use at least 32 characters"),
    ({"CURRENCY": "shillings"}, "CURRENCY='SHILLINGS': expected a 3-letter ISO code"),
])
def test_bad_values_are_errors_that_name_the_variable(env, message):
    with pytest.raises(SettingsError) as e:
        make(**env)
    assert message in str(e.value)


def test_secret_key_is_required_to_serve_outside_demo():
    s = Settings.from_env({"DATA_DIR": "/tmp/portal-settings-test"}, dotenv=None)
    with pytest.raises(SettingsError, match="SECRET_KEY is required"):
        s.check_for_serving()


def test_demo_mode_keeps_one_generated_secret(tmp_path):
    a = Settings.from_env({"DEMO": "1", "DATA_DIR": str(tmp_path)}, dotenv=None)
    b = Settings.from_env({"DEMO": "1", "DATA_DIR": str(tmp_path)}, dotenv=None)
    assert len(a.secret_key) >= 32 and a.secret_key == b.secret_key
    assert oct((tmp_path / "demo-secret-key").stat().st_mode)[-3:] == "600"


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "daraja"
    secret.write_text("passkey-from-a-file\n")
    assert make(DARAJA_PASSKEY_FILE=str(secret)).daraja_passkey == "passkey-from-a-file"


def test_dotenv_fills_in_but_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("GYM_NAME=From the file\nPORT=9000\n")
    import os

    old = dict(os.environ)
    try:
        os.environ.update({**BASE, "PORT": "8100"})
        s = Settings.from_env(None, dotenv=env_file)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert s.gym_name == "From the file" and s.port == 8100


def test_describe_masks_secrets():
    d = make(DARAJA_PASSKEY="very-secret").describe()
    assert d["daraja_passkey"] == "***" and d["secret_key"] == "***" and d["port"] == "8000"


def test_payment_limits_have_sane_defaults():
    s = make()
    assert (s.mpesa_max_amount, s.cash_max_amount, s.bank_max_amount, s.cheque_max_amount, s.card_max_amount) == (
        250_000, 100_000, 1_000_000, 1_000_000, 300_000)
    assert s.large_amount_confirm == 50_000
    assert make(MPESA_MAX_AMOUNT="150000", LARGE_AMOUNT_CONFIRM="20000").mpesa_max_amount == 150_000


@pytest.mark.parametrize("env, message", [
    ({"MPESA_MAX_AMOUNT": "1e3"}, "MPESA_MAX_AMOUNT='1e3': expected a whole number"),
    ({"CASH_MAX_AMOUNT": "100,000"}, "CASH_MAX_AMOUNT='100,000': expected a whole number"),
    ({"CARD_MAX_AMOUNT": "0"}, "CARD_MAX_AMOUNT=0: expected between 1 and"),
    ({"LARGE_AMOUNT_CONFIRM": "-1"}, "LARGE_AMOUNT_CONFIRM=-1: expected between 1 and"),
    # Above Safaricom's daily limit (500,000) no single payment can go through.
    ({"MPESA_MAX_AMOUNT": "500001"}, "MPESA_MAX_AMOUNT=500001: expected between 1 and 500000"),
])
def test_bad_payment_limits_are_errors_that_name_the_variable(env, message):
    with pytest.raises(SettingsError) as e:
        make(**env)
    assert message in str(e.value)


@pytest.mark.parametrize("command", ["worker", "run"])
def test_serving_without_secret_key_is_a_configuration_error_not_a_traceback(command, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DEMO="0", SANDBOX="0", DATA_DIR=str(tmp_path))
    r = subprocess.run([str(Path(sys.executable).parent / "portal"), command], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "configuration error: SECRET_KEY is required outside demo mode" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


LIVE = "https://portal.gym.example.co.ke"


@pytest.mark.parametrize("env, variable", [
    ({"SANDBOX": "1", "PUBLIC_BASE_URL": LIVE}, "DARAJA_CALLBACK_TOKEN"),
    ({"SANDBOX": "1", "PUBLIC_BASE_URL": "http://192.168.1.20:8000", "DARAJA_CALLBACK_TOKEN": "own-token-1234"},
     "FLUTTERWAVE_SECRET_HASH"),
    ({"SANDBOX": "1", "PUBLIC_BASE_URL": LIVE, "DARAJA_CALLBACK_TOKEN": "own-token-1234",
      "FLUTTERWAVE_SECRET_HASH": "own-hash-1234"}, "AT_CALLBACK_TOKEN"),
    # Typed by hand with the sandbox off, the well-known value is no better.
    ({"SANDBOX": "0", "PUBLIC_BASE_URL": LIVE, "AT_CALLBACK_TOKEN": "sandbox-callback-token"}, "AT_CALLBACK_TOKEN"),
])
def test_sandbox_tokens_are_refused_behind_a_public_address_outside_demo(env, variable):
    with pytest.raises(SettingsError) as e:
        make(**env).check_for_serving()
    assert str(e.value).startswith(f"{variable} is the sandbox's well-known")


@pytest.mark.parametrize("env", [
    {"SANDBOX": "1"},  # make run's address, and the test suite's
    {"SANDBOX": "1", "PUBLIC_BASE_URL": "http://localhost:8000"},
    {"SANDBOX": "1", "PUBLIC_BASE_URL": "http://[::1]:8000"},
    {"SANDBOX": "1", "DEMO": "1", "PUBLIC_BASE_URL": LIVE},  # a public demo moves no real money
    {"SANDBOX": "1", "PUBLIC_BASE_URL": LIVE, "DARAJA_CALLBACK_TOKEN": "own-token-1234",
     "FLUTTERWAVE_SECRET_HASH": "own-hash-1234", "AT_CALLBACK_TOKEN": "own-sms-1234"},
])
def test_sandbox_tokens_are_fine_where_nobody_else_can_call(env):
    make(**env).check_for_serving()


def test_portal_run_refuses_to_start_with_sandbox_tokens_behind_a_public_address(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DEMO": "0", "SANDBOX": "1", "PUBLIC_BASE_URL": LIVE, "DATA_DIR": str(tmp_path)}
    r = subprocess.run([str(Path(sys.executable).parent / "portal"), "run"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "configuration error: DARAJA_CALLBACK_TOKEN is the sandbox's well-known 'sandbox-callback-token'" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
