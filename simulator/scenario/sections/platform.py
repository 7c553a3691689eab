"""``settings:``, ``platform:`` and ``providers:`` — the timing of the run and the sending MTAs."""

from __future__ import annotations

from simulator.domain.entities import DEFAULT_PROVIDERS, Platform, Provider, Settings
from simulator.scenario.convert import ID_RE, MAX_ID_LENGTH, Pos, Reader, describe
from simulator.scenario.fields import JSON, Field, Kind, Table, list_schema, nullable
from simulator.scenario.kinds import (
    BOOLEAN,
    DNS_NAME,
    DURATION,
    ID_PATTERN,
    IP_LIST,
    IP_PATTERN,
    POSITIVE_DURATION,
)
from simulator.scenario.limits import MAX_SMALL_LIST
from simulator.scenario.times import POSITIVE_DURATION_PATTERN, format_duration


def _retry_schedule(reader: Reader, value: object, pos: Pos, where: str) -> tuple[int, ...]:
    items = tuple(
        reader.positive_duration(v, p, w)
        for v, p, w in reader.seq(
            value,
            pos,
            where,
            "a list of durations",
            MAX_SMALL_LIST,
            "the last interval repeats until the lifetime ends",
        )
    )
    if not items:
        reader.fail(pos, f"{where}: needs at least one interval, e.g. [5m, 10m, 20m]")
    return items


RETRY_SCHEDULE = Kind(
    _retry_schedule,
    list_schema({"type": "string", "pattern": POSITIVE_DURATION_PATTERN}, MAX_SMALL_LIST, min_items=1),
    lambda value: [format_duration(v) for v in value],
)

_SETTINGS = Settings()
SETTINGS_TABLE = Table(
    (
        Field("queue_poll", POSITIVE_DURATION, "The queue worker polls on this grid from start.", _SETTINGS.queue_poll),
        Field("stuck_after", DURATION, "Time In Queue after which email.stuck fires once.", _SETTINGS.stuck_after),
        Field(
            "token_lifetime",
            POSITIVE_DURATION,
            "A sync token expires this long after max(last sync, last login).",
            _SETTINGS.token_lifetime,
        ),
        Field(
            "smtp_path_requires_spf",
            BOOLEAN,
            "SMTP-path senders must pass SPF for every platform IP before the email leaves the queue.",
            _SETTINGS.smtp_path_requires_spf,
        ),
        Field(
            "retry_schedule",
            RETRY_SCHEDULE,
            "Intervals between delivery attempts; the last one repeats.",
            _SETTINGS.retry_schedule,
        ),
        Field(
            "max_queue_lifetime",
            DURATION,
            "Counted from the first delivery attempt; then the message bounces.",
            _SETTINGS.max_queue_lifetime,
        ),
    ),
    "Timing of the queue, the sync tokens and the retries.",
)


def _settings(reader: Reader, value: object, pos: Pos, where: str) -> Settings:
    entry = SETTINGS_TABLE.read(reader, value, pos, where)
    return Settings(
        queue_poll=entry["queue_poll"],
        stuck_after=entry["stuck_after"],
        token_lifetime=entry["token_lifetime"],
        smtp_path_requires_spf=entry["smtp_path_requires_spf"],
        retry_schedule=entry["retry_schedule"],
        max_queue_lifetime=entry["max_queue_lifetime"],
    )


SETTINGS = Kind(_settings, SETTINGS_TABLE.schema())

_PLATFORM = Platform()
_NON_EMPTY_IPS = list_schema({"type": "string", "pattern": IP_PATTERN}, MAX_SMALL_LIST, min_items=1)
PLATFORM_TABLE = Table(
    (
        Field(
            "sending_ips",
            Kind(IP_LIST.convert, _NON_EMPTY_IPS, IP_LIST.show),
            "The platform MTA's addresses (the SMTP path); at least one.",
            _PLATFORM.sending_ips,
        ),
        Field("helo", DNS_NAME, "The platform MTA's HELO name.", _PLATFORM.helo),
    ),
    "The platform's own outgoing MTA.",
)


def _platform(reader: Reader, value: object, pos: Pos, where: str) -> Platform:
    entry = PLATFORM_TABLE.read(reader, value, pos, where)
    ips = entry["sending_ips"]
    if not ips:
        reader.fail(entry.vpos("sending_ips"), f"{entry.sub('sending_ips')}: needs at least one IP address")
    return Platform(sending_ips=ips, helo=entry["helo"])


PLATFORM = Kind(_platform, PLATFORM_TABLE.schema())

PROVIDER_TABLE = Table(
    (
        Field(
            "sending_ips",
            Kind(IP_LIST.convert, _NON_EMPTY_IPS, IP_LIST.show),
            "Where the provider's MTA sends from; at least one (a built-in keeps its own when left out).",
        ),
        Field(
            "spf_include",
            DNS_NAME,
            "The name its SPF record (v=spf1 ip4:<sending_ips> -all) is published at, unless dns: has a TXT there.",
        ),
        Field("helo", DNS_NAME, "HELO name of its MTA."),
    ),
    "A mailbox-sync provider's MTA.",
)


def _providers(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Provider, ...]:
    view = reader.map(value, pos, where, "a mapping of provider name to settings")
    result: dict[str, Provider] = {p.name: p for p in DEFAULT_PROVIDERS}
    for key, item in view.data.items():
        kpos = view.kpos(key)
        if not isinstance(key, str) or not ID_RE.fullmatch(str(key)) or len(key) > MAX_ID_LENGTH:
            reader.fail(kpos, f"{where}: expected a provider name, got {describe(key)}")
        name = str(key)
        base = result.get(name, Provider(name, ()))
        if item is None:
            provider = base
        else:
            entry = PROVIDER_TABLE.read(reader, item, view.vpos(key), view.sub(name))
            provider = Provider(
                name=name,
                sending_ips=entry.get("sending_ips", base.sending_ips),
                spf_include=entry.get("spf_include", base.spf_include),
                helo=entry.get("helo", base.helo),
            )
            if entry.has("sending_ips") and not provider.sending_ips:
                reader.fail(entry.vpos("sending_ips"), f"{entry.sub('sending_ips')}: needs at least one IP address")
        if not provider.sending_ips:
            reader.fail(
                kpos,
                f"{view.sub(name)}: a provider needs at least one IP address; "
                f"add sending_ips: [...] (e.g. {name}: {{sending_ips: [192.0.2.7]}})",
            )
        result[name] = provider
    reader.provider_names = tuple(result)
    return tuple(result.values())


def _providers_schema() -> JSON:
    builtin = nullable(PROVIDER_TABLE.schema())
    added = PROVIDER_TABLE.schema({"required": ["sending_ips"]})
    added["properties"]["sending_ips"] = dict(
        _NON_EMPTY_IPS, description=PROVIDER_TABLE.by_key["sending_ips"].description
    )
    return {
        "type": "object",
        "description": "Mailbox-sync providers by name. microsoft365 and google are built in (an entry overrides only "
        "the keys it gives); another name adds a provider, modelled for its IPs but unsupported as a sync provider.",
        "properties": {p.name: dict(builtin) for p in DEFAULT_PROVIDERS},
        "propertyNames": {"pattern": ID_PATTERN, "maxLength": MAX_ID_LENGTH},
        "additionalProperties": added,
    }


PROVIDERS = Kind(_providers, _providers_schema())
