"""The vault's placeholder substitution and redaction (pure functions, no server)."""

from __future__ import annotations

import pyotp
import pytest

from app.credentials.vault import CredentialValues, UnknownPlaceholder
from workers.agent.page_state import PASSWORD_MASK, mask_passwords

SECRET = pyotp.random_base32()


def test_placeholders_are_revealed_for_typing_and_values_redacted_from_records() -> None:
    values = CredentialValues("password", {"username": "ada", "password": 'p"4ss\\word!', "totp": SECRET})
    assert values.reveal("{{credential.username}} / {{ credential.password }}") == 'ada / p"4ss\\word!'
    with pytest.raises(UnknownPlaceholder, match=r"credential\.totp"):
        values.reveal("{{credential.totp}}")  # the secret itself is never typed: codes are
    recorded = '{"text": "p\\"4ss\\\\word!", "secret": "' + SECRET + '", "raw": "p"4ss\\word!"}'
    redacted = values.redact(recorded)
    assert "4ss" not in redacted and SECRET not in redacted
    assert "{{credential.password}}" in redacted and "{{credential.totp}}" in redacted
    assert values.redact("signed in as ada") == "signed in as ada"  # the username is not a secret


def test_password_fields_values_are_masked_in_the_snapshot() -> None:
    snapshot = ('- textbox "Password" [ref=e3]: "Se\\"cr: et"\n- textbox "User" [ref=e4]: ada\n'
                '- textbox "Password again" [ref=e5]: hunter22')
    masked = mask_passwords(snapshot, {'Se"cr: et', "hunter22"})
    assert masked.splitlines() == [f'- textbox "Password" [ref=e3]: {PASSWORD_MASK}',
                                   '- textbox "User" [ref=e4]: ada',
                                   f'- textbox "Password again" [ref=e5]: {PASSWORD_MASK}']
