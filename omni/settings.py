"""The one settings object.

Only this module reads the environment. Everything else receives a ``Settings``
instance (``create_app(settings)``, ``provide_services(settings)``), so tests can
build isolated configurations without touching ``os.environ``.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path.cwd() / ".omni"


class RoutingSettings(BaseSettings):
    """Timings of the router's background loop."""

    model_config = SettingsConfigDict(env_prefix="OMNI_ROUTING_", extra="ignore")

    tick_seconds: float = 0.5
    """How often each node sweeps persisted deadlines and unassigned conversations."""
    offline_grace_seconds: float = 10.0
    """An operator whose last socket closed goes offline after this long (reload tolerance)."""
    node_heartbeat_seconds: float = 10.0
    node_ttl_seconds: float = 45.0
    """Sockets of a node silent this long are dropped (the node died), starting offline grace."""
    handle_time_window: int = 50
    """How many recent handled conversations feed the estimated-wait calculation."""
    outbound_seconds: float = 2.0
    """How often each node's campaign scheduler ticks when nothing wakes it (a freed operator
    wakes it at once); 0 = this node runs no scheduler (a node kept out of dialing, a test
    that opens attempts by hand). ``omni.domain.outbound.scheduler``."""


class WebhookSettings(BaseSettings):
    """CRM webhook delivery."""

    model_config = SettingsConfigDict(env_prefix="OMNI_WEBHOOK_", extra="ignore")

    timeout_seconds: float = 10.0
    max_attempts: int = 12
    """After this many failures a delivery is marked failed; a person can replay it."""
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0


class WidgetSettings(BaseSettings):
    """Web chat widget limits."""

    model_config = SettingsConfigDict(env_prefix="OMNI_WIDGET_", extra="ignore")

    max_concurrent_db: int = 24
    """Widget events using the database at once per process; the rest wait their turn, so a
    flood of visitors can't take every pooled connection (``OMNI_DB_POOL_SIZE``, which must be
    larger) from the relay, the router and the operators. It also caps how many visitor
    messages a second a process ingests: at most this many divided by the time one spends
    inside, and on a busy event loop that time is tens of milliseconds, so 8 capped a node at
    ~175 messages a second with CPU to spare (bench/README.md, "gate15")."""
    messages_per_minute: int = 30
    """Per visitor and node; more is refused with a clear error (flood protection)."""
    transcripts_per_minute: int = 3
    """Transcript mails and PDF downloads a visitor may ask for a minute (all nodes together
    when Redis is configured): a visitor-given address must not turn the widget into a mailer."""
    new_conversations_per_address: int = 10
    """New conversations a minute from one client address (all nodes together when Redis is
    configured); past it the customer is asked to wait a minute and the message is kept."""
    new_conversations_per_inbox: int = 300
    """New conversations a minute in one widget inbox, from everyone together."""
    max_upload_bytes: int = 10 * 1024 * 1024
    allowed_upload_types: list[str] = Field(
        default_factory=lambda: [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
            "text/plain",
        ]
    )
    """Checked against the declared type and, for images and PDF, the file's first bytes."""


class TelegramSettings(BaseSettings):
    """Telegram bots (``channels/telegram``): Bot API endpoint, pacing, polling and media limits."""

    model_config = SettingsConfigDict(env_prefix="OMNI_TELEGRAM_", extra="ignore")

    api_base_url: str = "https://api.telegram.org"
    """Bot API server (a local ``telegram-bot-api`` or, in tests, the emulator)."""
    webhook_base_url: str = ""
    """Public https base URL Telegram posts webhook updates to. Empty = ``public_base_url``."""
    messages_per_second: float = 28.0
    """Per bot; Telegram allows about 30. The headroom absorbs network jitter (zero 429s)."""
    per_chat_interval_seconds: float = 1.0
    """At most one message per chat per interval (Telegram: about 1 msg/s per chat)."""
    send_attempts: int = 5
    """Network / 5xx failures per message before it is marked failed for the operator."""
    retry_backoff_seconds: float = 1.0
    """First retry delay after a network error; doubles per attempt up to 30 s."""
    poll_timeout_seconds: int = 25
    """Long-polling ``getUpdates`` timeout."""
    poll_backoff_seconds: float = 1.0
    poll_backoff_max_seconds: float = 30.0
    """A failing poller restarts after a delay doubling from the first to the second value."""
    reconcile_seconds: float = 30.0
    """How often each node re-reads the bot list (bots added/disabled elsewhere, pollers)."""
    max_file_bytes: int = 20 * 1024 * 1024
    """Largest inbound media downloaded (the Bot API's own getFile limit is 20 MB)."""
    queue_update_min_seconds: float = 60.0
    """Position-in-line messages: at most one per conversation per this many seconds."""


class VoiceSettings(BaseSettings):
    """Asterisk (``channels/voice``): the AMI link, the dialplan contract, FastAGI and recordings."""

    model_config = SettingsConfigDict(env_prefix="OMNI_VOICE_", extra="ignore")

    enabled: bool = False
    """Connect to Asterisk and register the voice adapter. Off: no calls, no AMI traffic."""
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "omni"
    ami_secret: str = ""
    """AMI user (manager.conf) with ``read = call,agent,user`` and ``write = call,originate,system``."""
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 30.0
    """A lost or refused AMI link is retried after a delay doubling from the first to the second."""
    action_timeout_seconds: float = 10.0
    """How long an AMI action (Redirect, Bridge, Hangup, ...) may take before it counts as failed."""
    endpoint_template: str = "PJSIP/{extension}"
    """Dial string of an operator's phone from ``User.sip_extension`` (or, for an operator whose
    endpoint is the browser, the softphone's SIP user ``webrtc_user_template``)."""
    webrtc_ws_url: str = ""
    """The PBX's SIP-over-WebSocket address the operator window's softphone registers to
    (``wss://pbx.example.com:8089/ws``). Empty: no operator can choose the browser endpoint."""
    webrtc_domain: str = ""
    """The SIP domain of the softphones' addresses (``sip:webrtc7@<domain>``); empty = the
    host of ``webrtc_ws_url``."""
    webrtc_user_template: str = "webrtc{user_id}"
    """SIP user (PJSIP endpoint, auth and AOR name) of an operator's softphone."""
    webrtc_secret: str = ""
    """Key from which every softphone's SIP password is derived (HMAC per SIP user, never
    stored or typed); empty = derived from ``OMNI_SECRET_KEY``. Changing it changes every
    password: regenerate the PBX's endpoints (``omni softphones``)."""
    webrtc_ice_servers: list[str] = []
    """STUN/TURN URLs handed to the softphone (``stun:stun.example.com:3478``); empty = host
    candidates only (a LAN, or a PBX with a public address)."""
    wait_context: str = "omni-wait"
    """Where callers wait for an operator (music on hold); the voice adapter enqueues a caller
    on the ``UserEvent: OmniEnqueue`` this context raises."""
    agent_context: str = "omni-agent"
    """Where an operator's originated leg waits once answered (the adapter then bridges it)."""
    hold_context: str = "omni-hold"
    """Where a held caller listens to music on hold."""
    outbound_context: str = "omni-outbound"
    """Click-to-call: dials ``${EXTEN}`` with the caller id set on the originate."""
    internal_context: str = "omni-internal"
    """Operator extensions (attended transfers dial here)."""
    overflow_context: str = "omni-overflow"
    """Where a caller nobody answered goes (voicemail / goodbye)."""
    ivr_context: str = "omni-ivr"
    """The IVR (FastAGI ``ivr`` route, then the wait context): a call an operator transfers to a
    bot scenario is redirected to ``s`` here, where the AGI picks the same conversation up."""
    recordings_dir: Path = Path("/var/spool/asterisk/monitor/omni")
    """Where MixMonitor writes (a path on the Asterisk host, stored on the call)."""
    record_calls: bool = True
    default_ring_seconds: int = 20
    """Ring timeout of an operator when the queue has none (normally ``operator_timeout_seconds``)."""
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    """FastAGI server (IVR) bind address; the dialplan calls ``AGI(agi://host:port/...)``."""
    tts_app: str = ""
    """Dialplan application that speaks its single argument for IVR texts without a prompt file
    (``Festival``, ``Flite``, a cloud TTS module). Empty = prompt files only."""
    prompts_dir: Path = Path("/var/lib/asterisk/sounds/omni")
    """Recorded IVR prompts (Asterisk sound names without extension)."""
    moh_class: str = "default"
    """Music-on-hold class played to waiting and held callers."""
    # --- agentless notifications (docs/dialer.md "Agentless notifications") ---
    agentless_context: str = "omni-agentless"
    """Where an answered agentless campaign call is redirected: its FastAGI ``outbound`` route
    plays the campaign's scenario, then the wait context when it hands the customer over."""
    replies_dir: Path = Path("/var/spool/asterisk/monitor/omni/replies")
    """Where a scenario's ``record`` node records voice replies (AGI ``RECORD FILE``; a
    directory Asterisk writes and Omni reads, like ``recordings_dir``)."""

    # --- campaign calls: drops and answering-machine detection (docs/dialer.md) -------------
    drop_context: str = "omni-drop"
    """Where a predictive call nobody could take within ``drop_seconds`` is redirected: plays
    ``${OMNI_SOUND}`` (or runs ``${OMNI_SPEAK}``, a TTS application) and hangs up."""
    machine_context: str = "omni-machine"
    """Where an answering machine is redirected to hear the campaign's machine message: waits
    for the silence after the beep, plays ``${OMNI_SOUND}`` (or ``${OMNI_SPEAK}``), hangs up."""
    amd_context: str = "omni-amd"
    """The context an answered campaign call enters when its campaign has ``amd_enabled``:
    ``AMD(${OMNI_AMD})``, then ``UserEvent(OmniAmd)`` with the result, then the hold context."""
    amd_initial_silence: int = 2500
    """ms of silence before the greeting after which the callee is a MACHINE (amd.conf default)."""
    amd_greeting: int = 1500
    """ms: a greeting longer than this is a MACHINE."""
    amd_after_greeting_silence: int = 800
    """ms of silence after the greeting that make the callee a HUMAN."""
    amd_total_analysis_time: int = 5000
    """ms AMD may listen before it gives up with NOTSURE (treated as a human). Must be under
    ``dialing.ANSWER_MARGIN_SECONDS`` (15 s; checked at start): the ring deadline is the safety
    net meanwhile."""
    amd_min_word_length: int = 100
    """ms of voice that count as a word."""
    amd_between_words_silence: int = 50
    """ms of silence that end a word."""
    amd_maximum_number_of_words: int = 2
    """More words than this in the greeting is a MACHINE (a person says "Hello?")."""
    amd_silence_threshold: int = 256
    """Average sample level (0..32767) under which audio counts as silence."""
    amd_maximum_word_length: int = 5000
    """ms: one utterance longer than this is a MACHINE."""
    machine_silence_ms: int = 1500
    """The machine message starts after this much silence (the beep over), waited for at most
    ``machine_silence_wait_seconds`` (``WaitForSilence``)."""
    machine_silence_wait_seconds: int = 20

    @model_validator(mode="after")
    def _amd_within_the_ring_deadline(self) -> VoiceSettings:
        """While AMD listens the attempt has no ``answered_at``: only the ring deadline (ring
        time + ``dialing.ANSWER_MARGIN_SECONDS``) ends a call whose verdict never comes, so a
        longer analysis would have a still-listening call ended as "no answer reported"."""
        # Imported here: the domain imports this module.
        from omni.domain.outbound.dialing import ANSWER_MARGIN_SECONDS

        if not 0 < self.amd_total_analysis_time < ANSWER_MARGIN_SECONDS * 1000:
            raise ValueError(
                f"OMNI_VOICE_AMD_TOTAL_ANALYSIS_TIME ({self.amd_total_analysis_time} ms) must stay under the"
                f" ring deadline's margin (ANSWER_MARGIN_SECONDS = {ANSWER_MARGIN_SECONDS} s ="
                f" {ANSWER_MARGIN_SECONDS * 1000} ms)"
            )
        return self


class SpeechSettings(BaseSettings):
    """Text to speech (``omni.domain.speech``): how the IVR says a bot text that has no prompt
    file, and the cache of rendered audio. ``docs/dialer.md`` (Text to speech)."""

    model_config = SettingsConfigDict(env_prefix="OMNI_TTS_", extra="ignore")

    engine: str = ""
    """``espeak``: audio files rendered by espeak-ng (the Debian package, with a Russian voice)
    and sox, cached, played with ``STREAM FILE``; ``app``: the dialplan application
    :attr:`app` speaks the text (no files); empty: prompt files only (or, when
    ``OMNI_VOICE_TTS_APP`` is set, that application as before)."""
    app: str = ""
    """Dialplan application for engine ``app`` (``Festival``, ``googletts``, ...); it gets the
    spelled text as its one argument. Empty = ``OMNI_VOICE_TTS_APP``."""
    voice_ru: str = "ru"
    voice_en: str = "en-us"
    """espeak-ng voices (``espeak-ng --voices``) for Russian and for every other language."""
    rate: int = 150
    """Words per minute (espeak-ng ``-s``); 80–450."""
    spell: bool = True
    """Write numbers, dates, money and phone numbers out in words before synthesis."""
    cache_dir: Path | None = None
    """Where rendered files go: a directory Asterisk reads at the same path (a shared volume).
    Empty = ``<data_dir>/media/tts``."""
    cache_max_bytes: int = 512 * 1024 * 1024
    """Rendered audio kept at most; past it the least recently played files are removed when a
    new one is written (and re-rendered if asked for again)."""
    command_timeout_seconds: float = 60.0
    """espeak-ng or sox running longer than this is stopped and the render fails."""

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("", "espeak", "app"):
            raise ValueError(f"OMNI_TTS_ENGINE must be espeak, app or empty, not {value!r}")
        return value

    @field_validator("rate")
    @classmethod
    def _sane_rate(cls, value: int) -> int:
        if not 80 <= value <= 450:
            raise ValueError(f"OMNI_TTS_RATE must be 80–450 words per minute, not {value}")
        return value


class MediaSettings(BaseSettings):
    """Audio prompts (``omni.domain.prompts``) and the staff file area (``omni.domain.staff_files``)."""

    model_config = SettingsConfigDict(env_prefix="OMNI_MEDIA_", extra="ignore")

    prompts_dir: Path | None = None
    """Where converted prompts are written (8 kHz mono 16-bit WAV) and what their ``sound``
    names: a directory Asterisk reads (shared with its host). Empty = ``data_dir/media/prompts``."""
    max_prompt_bytes: int = 20 * 1024 * 1024
    """Largest WAV/MP3 upload."""
    max_prompt_seconds: int = 600
    """Longest prompt; a longer one is refused (hold music belongs to a music-on-hold class)."""
    max_staff_file_bytes: int = 50 * 1024 * 1024
    staff_file_types: list[str] = Field(
        default_factory=lambda: [
            "application/pdf",
            "text/plain",
            "text/csv",
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.oasis.opendocument.text",
            "application/vnd.oasis.opendocument.spreadsheet",
            "application/zip",
            "audio/wav",
            "audio/mpeg",
        ]
    )
    """Declared types accepted in the staff file area (checked like chat attachments:
    ``omni.domain.files.check_upload``)."""


class SmtpSettings(BaseSettings):
    """Outgoing mail (scheduled reports, ``omni.domain.reports.mailing``). No host = no mail:
    schedules can still be set up, and the page says mail is off."""

    model_config = SettingsConfigDict(env_prefix="OMNI_SMTP_", extra="ignore")

    host: str = ""
    port: int = 587
    username: str = ""
    """Empty = no ``AUTH`` (a relay that trusts this host)."""
    password: str = ""
    security: Literal["none", "starttls", "ssl"] = "starttls"
    """``starttls`` upgrades a plain connection (port 587); ``ssl`` is TLS from the first byte
    (port 465); ``none`` only for a relay on a trusted network."""
    from_address: str = "omni@localhost"
    timeout_seconds: float = 30.0
    """Per network operation with the mail server; a send is given up and retried after it."""
    check_seconds: float = 60.0
    """How often due schedules are looked for (the Celery beat entry, or the embedded loop)."""
    retry_seconds: float = 300.0
    """First retry of a failed send; doubles per failure of the same slot."""
    max_attempts: int = 5
    """Failures of one slot before it is given up (the error stays on the schedule; the next
    slot is tried as usual)."""
    transcript_pdf: bool = True
    """Attach the PDF of the conversation to the transcript mail (``omni.domain.transcript``);
    off = the text and HTML parts only."""


LDAP_ROLES = ("admin", "supervisor", "operator", "auditor")


def normalize_dn(dn: str) -> str:
    """A DN as compared for the role map: lower case, no spaces around the commas (``CN=Omni
    Admins, OU=Groups`` and ``cn=omni admins,ou=groups`` are one group)."""
    return ",".join(part.strip() for part in dn.strip().lower().split(","))


class LdapSettings(BaseSettings):
    """Sign-in against LDAP / Active Directory (``omni.domain.ldap_auth``). No ``url`` = off:
    every account is local. With it, a username with no local account (or an account made by
    an earlier LDAP sign-in) is checked by the directory; local accounts keep their password,
    so a local admin can still sign in while the directory is down."""

    model_config = SettingsConfigDict(env_prefix="OMNI_LDAP_", extra="ignore")

    url: str = ""
    """``ldap://dc1.example.com:389`` or ``ldaps://…:636``; several separated by spaces are
    tried in turn."""
    start_tls: bool = False
    """Upgrade an ``ldap://`` connection with StartTLS before any password is sent."""
    ca_file: str = ""
    """PEM bundle that signs the server certificate (empty = the system's)."""
    bind_dn: str = ""
    """Service account that searches for the user (empty = anonymous search)."""
    bind_password: str = ""
    user_base_dn: str = ""
    """Where users are searched, e.g. ``ou=people,dc=example,dc=org``."""
    user_filter: str = "(uid={username})"
    """``{username}`` is replaced, escaped (RFC 4515). Active Directory:
    ``(&(objectClass=user)(sAMAccountName={username}))``."""
    username_attribute: str = "uid"
    """The attribute holding the sign-in name (AD: ``sAMAccountName``): the local account is
    named by it, so ``Alice`` and ``alice`` are one account."""
    group_base_dn: str = ""
    """Where groups are searched (empty = only the user's ``memberOf`` is read, as on AD)."""
    group_filter: str = "(|(member={dn})(uniqueMember={dn}))"
    """Groups the user belongs to; ``{dn}`` is the user's DN, escaped."""
    role_map: dict[str, str] = Field(default_factory=dict)
    """Group DN → role (JSON: ``{"cn=omni-admins,ou=groups,dc=example,dc=org": "admin"}``);
    compared case-insensitively, spaces around commas ignored. A user in several gets the
    strongest (admin, supervisor, operator, auditor)."""
    default_role: str = ""
    """Role of a directory user in no mapped group; empty = such users can't sign in."""
    display_name_attribute: str = "cn"
    email_attribute: str = "mail"
    timeout_seconds: float = 5.0
    """Connect and per-operation timeout; past it the directory counts as down."""

    @field_validator("role_map")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for group, role in value.items():
            if role not in LDAP_ROLES:
                raise ValueError(f"OMNI_LDAP_ROLE_MAP: {group!r} maps to unknown role {role!r}")
        return {normalize_dn(group): role for group, role in value.items()}

    @field_validator("default_role")
    @classmethod
    def _known_default(cls, value: str) -> str:
        if value and value not in LDAP_ROLES:
            raise ValueError(f"OMNI_LDAP_DEFAULT_ROLE: unknown role {value!r}")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip())


class Settings(BaseSettings):
    """Everything configurable, from ``OMNI_*`` environment variables or ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="OMNI_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    database_url: str = ""
    """SQLAlchemy async URL. Empty = SQLite file in ``data_dir`` (embedded mode)."""
    redis_url: str = ""
    """Empty = in-process fan-out and in-process Celery worker (embedded mode)."""
    secret_key: str = ""
    """Signs sessions and encrypts stored secrets. Required outside embedded mode."""
    public_base_url: str = "http://127.0.0.1:8000"
    """Where users reach Omni (CORS, same-origin checks, links). Unset: ``http://HOST:PORT``."""
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """Worker processes of ``omni serve`` sharing the port (``--workers``); more than one needs
    Redis and makes the Socket.IO server WebSocket-only (docs/deployment.md)."""
    debug: bool = False
    log_level: str = "INFO"
    redis_prefix: str = "omni"
    """Prefix of every Redis key and channel, so several installs (or tests) share one Redis."""
    session_max_age_seconds: int = 12 * 3600
    trusted_proxies: str = ""
    """Comma-separated addresses or networks (``10.0.0.5, 172.16.0.0/12``) of the reverse
    proxies in front of Omni; only their ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are
    believed. Empty = none: the client address is the connection's peer, so nobody can pick
    their own address to dodge the login throttle or the widget limits."""
    default_language: str = "en"
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    widget: WidgetSettings = Field(default_factory=WidgetSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    ldap: LdapSettings = Field(default_factory=LdapSettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    lease_check_seconds: float = 1.0
    """How often a node proves it still holds its leases (the AMI link, each polling bot:
    ``omni.lease``) and a standby tries to take a free one: a dead holder's lease moves within
    about this long."""
    db_pool_size: int = 40
    """The most PostgreSQL connections a process opens; each is kept once opened (no overflow:
    ``Database``)."""
    socketio_max_message_bytes: int = 256 * 1024
    """Largest Socket.IO/engine.io message a client may send; a bigger one closes its
    connection. Told to the widget in ``welcome.limits`` so it never sends one (a chat message
    is at most 10,000 characters; files go over HTTP)."""

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("OMNI_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _public_url_follows_the_port(self) -> Settings:
        # Unset, the public address is where ``omni serve`` listens: with only OMNI_PORT changed,
        # the consoles' same-origin check refused every socket ("connection lost") on the demo.
        if "public_base_url" not in self.model_fields_set and (self.host, self.port) != ("127.0.0.1", 8000):
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104  (a comparison, no bind)
            self.public_base_url = f"http://{host}:{self.port}"
        return self

    @model_validator(mode="after")
    def _widget_gate_under_the_pool(self) -> Settings:
        # A gate as large as the pool lets a visitor flood hold every connection, and the
        # relay (delivery of what is already stored) waits behind it.
        pooled = self.database_url.startswith("postgresql")
        if pooled and self.widget.max_concurrent_db >= self.db_pool_size:
            raise ValueError(
                f"OMNI_WIDGET_MAX_CONCURRENT_DB ({self.widget.max_concurrent_db}) must be smaller "
                f"than OMNI_DB_POOL_SIZE ({self.db_pool_size}): the relay and the router need "
                "connections of their own"
            )
        if self.widget.max_concurrent_db < 1:
            raise ValueError("OMNI_WIDGET_MAX_CONCURRENT_DB must be at least 1")
        return self

    @model_validator(mode="after")
    def _tts_app_named(self) -> Settings:
        if self.speech.engine == "app" and not self.tts_app:
            raise ValueError("OMNI_TTS_ENGINE=app needs OMNI_TTS_APP (the dialplan application that speaks)")
        return self

    @property
    def tts_cache_dir(self) -> Path:
        """Where rendered speech is kept (``OMNI_TTS_CACHE_DIR`` or ``<data_dir>/media/tts``)."""
        return self.speech.cache_dir or self.data_dir / "media" / "tts"

    @property
    def tts_app(self) -> str:
        """The dialplan application that speaks texts: ``OMNI_TTS_APP``, else the older
        ``OMNI_VOICE_TTS_APP`` (empty = none)."""
        return self.speech.app or self.voice.tts_app

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: fan-out and Celery stay inside this process."""
        return not self.redis_url

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'omni.sqlite3'}"

    @property
    def prompts_dir(self) -> Path:
        """Where converted prompts live (``media.prompts_dir``, else under ``data_dir``)."""
        return self.media.prompts_dir or self.data_dir / "media" / "prompts"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def effective_secret_key(self) -> str:
        """The configured secret, or a per-install one persisted in ``data_dir`` (embedded only).

        A distributed install must share one secret across nodes, so it must be configured.
        """
        if self.secret_key:
            return self.secret_key
        if not self.embedded:
            raise MissingSecretError("OMNI_SECRET_KEY is required when OMNI_REDIS_URL is set (several nodes)")
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


class MissingSecretError(RuntimeError):
    """A required secret setting is absent; the message names the variable."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the process environment; used by the CLI and the Celery worker only."""
    return Settings()
