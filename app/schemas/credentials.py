"""Credentials and TOTP codes: Skyvern's CreateCredentialRequest / CredentialResponse and
TOTPCodeCreate / TOTPCode."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.schemas.runs import OneOffRunFields

OtpType = Literal["totp", "magic_link"]


def normalize_totp_identifier(identifier: str) -> str:
    """E-mail identifiers match case-insensitively (as in Skyvern); others exactly, minus whitespace."""
    identifier = identifier.strip()
    return identifier.lower() if "@" in identifier else identifier


class TOTPCodeCreate(BaseModel):
    totp_identifier: str = Field(min_length=1, max_length=500)
    content: str = Field(min_length=1)
    task_id: str | None = None
    workflow_id: str | None = None
    workflow_run_id: str | None = None
    source: str | None = Field(default=None, max_length=200)
    expired_at: datetime | None = None
    type: OtpType | None = None


class TOTPCode(BaseModel):
    totp_code_id: str
    totp_identifier: str
    code: str
    content: str
    organization_id: str
    task_id: str | None = None
    workflow_id: str | None = None
    workflow_run_id: str | None = None
    source: str | None = None
    expired_at: datetime | None = None
    type: OtpType | None = None
    otp_type: OtpType | None = None
    created_at: datetime
    modified_at: datetime


# Stored credentials (Skyvern's CreateCredentialRequest / CredentialResponse). Secret fields are write-only.

CredentialType = Literal["password", "credit_card", "secret"]
CredentialVaultType = Literal["skyvern", "bitwarden", "azure_vault", "gcp", "custom"]  # stored: skyvern only
TotpType = Literal["authenticator", "email", "text", "passkey", "none"]


class PasswordCredential(BaseModel):
    username: str = Field(min_length=1, max_length=500)
    password: str = Field(min_length=1, max_length=2000)
    totp: str | None = Field(default=None, max_length=500)  # base32 authenticator secret
    totp_type: TotpType | None = None
    totp_identifier: str | None = Field(default=None, max_length=500)
    metadata: dict[str, str] | None = None


class CreditCardCredential(BaseModel):
    card_number: str = Field(min_length=4, max_length=40)
    card_cvv: str = Field(min_length=1, max_length=8)
    card_exp_month: str = Field(min_length=1, max_length=8)
    card_exp_year: str = Field(min_length=1, max_length=8)
    card_brand: str = Field(min_length=1, max_length=100)
    card_holder_name: str = Field(min_length=1, max_length=500)
    billing_address: dict[str, Any] | None = None
    billing_email: str | None = None
    billing_phone: str | None = None
    metadata: dict[str, str] | None = None


class SecretCredential(BaseModel):
    secret_value: str = Field(min_length=1, max_length=10_000)
    secret_label: str | None = Field(default=None, max_length=500)


CREDENTIAL_MODELS: dict[str, type[BaseModel]] = {
    "password": PasswordCredential, "credit_card": CreditCardCredential, "secret": SecretCredential,
}


class CreateCredentialRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=500)
    credential_type: CredentialType
    credential: dict[str, Any]
    vault_type: str | None = None
    tested_url: str | None = None

    @model_validator(mode="after")
    def _credential_matches_type(self) -> CreateCredentialRequest:
        """Validate `credential` against the model its credential_type names (errors name the field)."""
        if self.vault_type not in (None, "skyvern"):
            raise ValueError(f"vault_type {self.vault_type!r} is not configured here; use 'skyvern'.")
        model = CREDENTIAL_MODELS[self.credential_type]
        try:
            model.model_validate(self.credential)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"credential.{where}: {first['msg']} (credential_type "
                             f"{self.credential_type!r})") from None
        return self

    def parsed_credential(self) -> PasswordCredential | CreditCardCredential | SecretCredential:
        parsed = CREDENTIAL_MODELS[self.credential_type].model_validate(self.credential)
        assert isinstance(parsed, PasswordCredential | CreditCardCredential | SecretCredential)
        return parsed


class CredentialResponse(BaseModel):
    credential_id: str
    name: str
    credential_type: str
    credential: dict[str, Any]  # only the non-secret parts
    vault_type: str | None = "skyvern"
    browser_profile_id: str | None = None
    tested_url: str | None = None
    folder_id: str | None = None
    proxy_location: Any = None
    created_at: datetime
    modified_at: datetime


class LoginRequest(OneOffRunFields):
    """Skyvern's LoginRequest (POST /v1/run/tasks/login)."""

    credential_type: Literal["skyvern", "bitwarden", "1password", "azure_vault"]
    credential_id: str | None = None
    prompt: str | None = None
    bitwarden_collection_id: str | None = None
    bitwarden_item_id: str | None = None
    onepassword_vault_id: str | None = None
    onepassword_item_id: str | None = None
    azure_vault_name: str | None = None
    azure_vault_username_key: str | None = None
    azure_vault_password_key: str | None = None
    azure_vault_totp_secret_key: str | None = None
