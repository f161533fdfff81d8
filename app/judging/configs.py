"""Judge configurations: checking what a researcher posts, the judge's rater account, the key, prompt versions.

The endpoint key goes in and never comes out: it is encrypted on the way in (app.judge.keys) and every
view of a configuration carries only `describe()` of it (set or not, its last four characters). A
posted body without "key" keeps the stored one, so an edit form need not (and cannot) show it.

Each configuration owns a User (role rater, inactive, a password hash that matches no password): the
judge's Ratings then sit beside the humans' in the same tables and the same agreement view, and the
account can never log in. Prompt edits are stored as JudgePrompt rows named by their content hash; the
configuration points at one version per template kind, and a rating's result names the version used.

`dimensions` says what the judge scores: AlignBench's set for the case's task_type ("alignbench", the
default), or the task's own rubric ("rubric"), whose scores the results page compares with people's.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from app.core.config import Settings
from app.judge.client import Endpoint, EndpointError
from app.judge.dimensions import GROUPS
from app.judge.keys import EndpointKeyError, describe, encrypt_key
from app.judge.prompts import LANGS, default_template
from app.judge.templates import KINDS, Template, TemplateError
from app.models import JudgeConfig, JudgeKind, JudgePrompt, Role, SamplingMode, User, utcnow
from app.models.judge import JudgeDimensions
from app.sampling.refs import resolve_model
from app.sampling.request import SamplingError

MAX_NAME = 200
MAX_TEMPLATE = 20_000
MAX_OVERRIDES = 200
# No scrypt hash has this form, so app.core.security.verify_password refuses every password for it.
NO_PASSWORD = "judge-account-no-password"


class ConfigError(ValueError):
    """A configuration that cannot be stored; `field` names the form field (or API key) at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class ConfigRequest:
    """A checked body; `key` None keeps the stored key, "" clears it."""

    name: str
    kind: str
    base_url: str
    model: str
    key: str | None
    model_ref: str
    mode: str
    lang: str
    temperature: float
    max_tokens: int
    templates: dict[str, str | None]  # kind -> edited text; None: back to the shipped default
    groups: dict[str, str]
    dimensions: str  # a JudgeDimensions


def _number(body: dict[str, Any], key: str, default: float, kind: type) -> Any:
    raw = body.get(key, default)
    if raw in ("", None):
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(key, f"{key} must be a number, not {str(raw)[:40]!r}") from None
    if isinstance(raw, bool) or (kind is int and isinstance(raw, float) and raw != value):
        raise ConfigError(key, f"{key} must be a whole number")
    return value


def _templates(raw: Any) -> dict[str, str | None]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("templates", "templates must be an object of template kind: text")
    out: dict[str, str | None] = {}
    for kind, text in raw.items():
        if kind not in KINDS:
            raise ConfigError("templates", f"unknown template kind {kind!r}; known: {', '.join(KINDS)}")
        if text is None or (isinstance(text, str) and not text.strip()):
            out[kind] = None
            continue
        if not isinstance(text, str) or len(text) > MAX_TEMPLATE:
            raise ConfigError(
                f"templates.{kind}", f"a template is a text of at most {MAX_TEMPLATE} characters"
            )
        try:
            Template(kind, text)
        except TemplateError as exc:
            raise ConfigError(f"templates.{kind}", str(exc)) from None
        out[kind] = text
    return out


def _groups(raw: Any) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_OVERRIDES:
        raise ConfigError("groups", f"groups must be an object of task_type: group, at most {MAX_OVERRIDES}")
    out = {}
    for task_type, group in raw.items():
        if not isinstance(task_type, str) or not task_type.strip() or len(task_type) > 401:
            raise ConfigError("groups", 'each override needs a task_type ("l1" or "l1/l2")')
        if group not in GROUPS:
            raise ConfigError(
                "groups", f"unknown dimension group {group!r} for {task_type!r}; known: {', '.join(GROUPS)}"
            )
        out[task_type.strip()] = group
    return out


def parse_config(body: Any) -> ConfigRequest:
    """The posted configuration checked field by field; ConfigError names the first problem."""
    if not isinstance(body, dict):
        raise ConfigError("body", "the body must be a JSON object")
    name = str(body.get("name") or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ConfigError("name", f"give the judge a name of 1 to {MAX_NAME} characters")
    kind = str(body.get("kind") or JudgeKind.endpoint.value)
    if kind not in (JudgeKind.endpoint.value, JudgeKind.local.value):
        raise ConfigError("kind", "kind must be endpoint or local")
    lang = str(body.get("lang") or "en")
    if lang not in LANGS:
        raise ConfigError("lang", f"lang must be one of {', '.join(LANGS)}")
    mode = str(body.get("mode") or SamplingMode.chat.value)
    if mode not in (SamplingMode.chat.value, SamplingMode.continuation.value):
        raise ConfigError("mode", "mode must be chat or continuation")
    dimensions = body.get("dimensions")
    if dimensions in (None, ""):
        dimensions = JudgeDimensions.alignbench.value
    if not isinstance(dimensions, str) or dimensions not in tuple(JudgeDimensions):
        known = " or ".join(tuple(JudgeDimensions))
        raise ConfigError("dimensions", f"dimensions must be {known}, not {str(dimensions)[:40]!r}")
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        raise ConfigError("key", "key must be a text")
    req = ConfigRequest(
        name=name,
        kind=kind,
        base_url=str(body.get("base_url") or "").strip(),
        model=str(body.get("model") or "").strip(),
        key=key,
        model_ref=str(body.get("model_ref") or "").strip(),
        mode=mode,
        lang=lang,
        temperature=_number(body, "temperature", 0.0, float),
        max_tokens=_number(body, "max_tokens", 2048, int),
        templates=_templates(body.get("templates")),
        groups=_groups(body.get("groups")),
        dimensions=str(dimensions),
    )
    if kind == JudgeKind.endpoint.value:
        if urlsplit(req.base_url).scheme not in ("http", "https") or not urlsplit(req.base_url).netloc:
            raise ConfigError("base_url", "give the endpoint's API root as http(s)://host/v1")
        try:
            Endpoint(req.base_url, req.model, temperature=req.temperature, max_tokens=req.max_tokens)
        except EndpointError as exc:
            field = next((f for f in ("model", "max_tokens") if f in str(exc)), "temperature")
            raise ConfigError(field, str(exc)) from None
    else:
        if not 0 <= req.temperature <= 2:
            raise ConfigError("temperature", f"temperature must be between 0 and 2, not {req.temperature:g}")
        if req.max_tokens < 1:
            raise ConfigError("max_tokens", "max_tokens must be positive")
    return req


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    return slug[:40].strip("-") or "judge"


def prompt_version(session: Session, *, kind: str, text: str, by: int | None) -> str:
    """The version of a prompt text, stored once (a second save of the same text finds the first)."""
    template = Template(kind, text)
    found = session.exec(
        select(JudgePrompt).where(JudgePrompt.kind == kind, JudgePrompt.version == template.version)
    ).first()
    if found is None:
        session.add(JudgePrompt(kind=kind, version=template.version, text=text, created_by=by))
        session.flush()
    return template.version


def _apply(session: Session, config: JudgeConfig, req: ConfigRequest, *, settings: Settings, by: int) -> None:
    if req.kind == JudgeKind.local.value:
        try:
            resolve_model(session, ref=req.model_ref, settings=settings)
        except SamplingError as exc:
            raise ConfigError("model_ref", exc.message) from None
    if req.key is not None:
        try:
            config.key_token = (
                encrypt_key(req.key, secret_key=settings.secret_key) if req.key.strip() else None
            )
        except EndpointKeyError as exc:
            raise ConfigError("key", str(exc)) from None
    versions = json.loads(config.templates_json or "{}")
    for kind, text in req.templates.items():
        if text is None:
            versions.pop(kind, None)
        else:
            versions[kind] = prompt_version(session, kind=kind, text=text, by=by)
    config.name = req.name
    config.kind = req.kind
    config.base_url = req.base_url
    config.model = req.model
    config.model_ref = req.model_ref
    config.mode = req.mode
    config.lang = req.lang
    config.temperature = req.temperature
    config.max_tokens = req.max_tokens
    config.templates_json = json.dumps(versions, sort_keys=True)
    config.groups_json = json.dumps(req.groups, ensure_ascii=False, sort_keys=True)
    config.dimensions = req.dimensions
    config.updated_at = utcnow()


def create_config(session: Session, *, req: ConfigRequest, owner_id: int, settings: Settings) -> JudgeConfig:
    """A new configuration with its rater account `judge-<id>-<slug>` (commits)."""
    account = User(
        username=f"judge-new-{secrets.token_hex(8)}",
        role=Role.rater,
        is_active=False,
        password_hash=NO_PASSWORD,
    )
    session.add(account)
    session.flush()
    config = JudgeConfig(owner_id=owner_id, user_id=account.id or 0, name=req.name)
    try:
        _apply(session, config, req, settings=settings, by=owner_id)
    except ConfigError:
        session.rollback()
        raise
    session.add(config)
    session.flush()
    account.username = f"judge-{config.id}-{_slug(req.name)}"
    session.add(account)
    session.commit()
    session.refresh(config)
    return config


def update_config(
    session: Session, *, config: JudgeConfig, req: ConfigRequest, settings: Settings, by: int
) -> JudgeConfig:
    """Change a configuration; its account keeps its id (so its past ratings stay its own). Commits."""
    try:
        _apply(session, config, req, settings=settings, by=by)
    except ConfigError:
        session.rollback()
        raise
    account = session.get(User, config.user_id)
    if account is not None:
        account.username = f"judge-{config.id}-{_slug(req.name)}"
        session.add(account)
    session.add(config)
    session.commit()
    session.refresh(config)
    return config


def template_text(session: Session, config: JudgeConfig, kind: str) -> Template:
    """The prompt the configuration uses for a template kind: its edited version, else the default."""
    version = json.loads(config.templates_json or "{}").get(kind)
    if version:
        stored = session.exec(
            select(JudgePrompt).where(JudgePrompt.kind == kind, JudgePrompt.version == version)
        ).first()
        if stored is not None:
            return Template(kind, stored.text)
    return default_template(kind, config.lang, rubric=config.dimensions == JudgeDimensions.rubric.value)


def public(session: Session, config: JudgeConfig, *, settings: Settings) -> dict[str, Any]:
    """What pages and the API show of a configuration: everything but the key, which is only described."""
    info = describe(config.key_token, secret_key=settings.secret_key)
    account = session.get(User, config.user_id)
    templates = {}
    for kind in KINDS:
        template = template_text(session, config, kind)
        edited = kind in json.loads(config.templates_json or "{}")
        templates[kind] = {"version": template.version, "edited": edited, "text": template.text}
    return {
        "id": config.id,
        "name": config.name,
        "kind": config.kind,
        "base_url": config.base_url,
        "model": config.model,
        "key": {"set": info.is_set, "last4": info.last4, "needs_reentry": info.needs_reentry},
        "model_ref": config.model_ref,
        "mode": config.mode,
        "lang": config.lang,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "templates": templates,
        "groups": json.loads(config.groups_json or "{}"),
        "dimensions": config.dimensions,
        "rater": account.username if account else "",
        "rater_id": config.user_id,
        "url": f"/judges/{config.id}",
    }


def list_configs(session: Session) -> list[JudgeConfig]:
    return list(session.exec(select(JudgeConfig).order_by(col(JudgeConfig.id).desc())).all())
