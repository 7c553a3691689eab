"""``organization:``, ``users:``, ``contacts:`` and ``properties:`` — the platform's initial state."""

from __future__ import annotations

from simulator.domain.entities import (
    Branch,
    Configuration,
    Contact,
    Organization,
    Property,
    PropertyContact,
    Region,
    Sync,
    User,
)
from simulator.domain.vocabulary import RECIPIENT_ROLES
from simulator.scenario.convert import LineCol, Pos, Reader, short, value_pos
from simulator.scenario.fields import REQUIRED, SLOW, Field, Kind, Table, enum_schema, list_schema
from simulator.scenario.kinds import (
    ADDRESS,
    BOOLEAN,
    BRANCH_REF,
    CONTACT_REF,
    ID,
    INITIAL_TIME,
    PROVIDER_NAME,
    REGION_REF,
    STRING,
)
from simulator.scenario.limits import MAX_ENTITIES, MAX_SMALL_LIST
from simulator.scenario.yamltree import YMap, YSeq


def _roles(reader: Reader, value: object, pos: Pos, where: str) -> tuple[str, ...]:
    seen: dict[str, Pos] = {}
    for v, p, w in reader.seq(value, pos, where, "a list of roles", MAX_SMALL_LIST):
        role = reader.choice(v, p, w, RECIPIENT_ROLES, "role")
        if role in seen:
            reader.fail(p, f"{w}: role {role!r} is listed twice")
        seen[role] = p
    if not seen:
        reader.fail(pos, f"{where}: needs at least one role ({', '.join(RECIPIENT_ROLES)})")
    return tuple(seen)


ROLES = Kind(_roles, list_schema(enum_schema(RECIPIENT_ROLES), MAX_SMALL_LIST, min_items=1) | {"uniqueItems": True})

CONFIGURATION_TABLE = Table(
    (
        Field("invoice_email_from", ADDRESS, 'Configuration\'s "Invoice Email From" (the sender of last resort).'),
        Field(
            "invoice_recipients",
            ROLES,
            "Which property-contact roles receive invoices (email_invoice, billing, primary; no repeats).",
            Configuration().invoice_recipients,
        ),
    ),
    "The tenant's Configuration.",
)


def _configuration(reader: Reader, value: object, pos: Pos, where: str) -> Configuration:
    entry = CONFIGURATION_TABLE.read(reader, value, pos, where)
    return Configuration(invoice_email_from=entry["invoice_email_from"], invoice_recipients=entry["invoice_recipients"])


CONFIGURATION = Kind(_configuration, CONFIGURATION_TABLE.schema())

REGION_TABLE = Table(
    (
        Field("id", ID, "The region's id.", REQUIRED),
        Field("invoicing_email_from", ADDRESS, 'The region\'s "Invoicing Email From".'),
    )
)


def _regions(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Region, ...]:
    out = []
    for v, p, w in reader.seq(value, pos, where, "a list of regions", MAX_ENTITIES):
        entry = REGION_TABLE.read(reader, v, p, w)
        ident = entry["id"]
        reader.define(reader.ids.regions, ident, entry.vpos("id"), "region")
        out.append(Region(ident, entry["invoicing_email_from"], reader.loc(entry.pos)))
    return tuple(out)


BRANCH_TABLE = Table(
    (
        Field("id", ID, "The branch's id.", REQUIRED),
        Field("region", REGION_REF, "The branch's region (defined under regions:)."),
        Field("invoicing_email_from", ADDRESS, 'The branch\'s "Invoicing Email From".'),
    )
)


def _branches(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Branch, ...]:
    out = []
    for v, p, w in reader.seq(value, pos, where, "a list of branches", MAX_ENTITIES):
        entry = BRANCH_TABLE.read(reader, v, p, w)
        ident = entry["id"]
        reader.define(reader.ids.branches, ident, entry.vpos("id"), "branch")
        region = entry["region"]
        out.append(Branch(ident, region, entry["invoicing_email_from"], reader.loc(entry.pos)))
    return tuple(out)


REGIONS = Kind(_regions, list_schema(REGION_TABLE.schema(), MAX_ENTITIES))
BRANCHES = Kind(_branches, list_schema(BRANCH_TABLE.schema(), MAX_ENTITIES))

ORGANIZATION_TABLE = Table(
    (
        Field("configuration", CONFIGURATION, "The tenant's Configuration."),
        Field("regions", REGIONS, "Regions, each with an optional Invoicing Email From.", ()),
        Field("branches", BRANCHES, "Branches, each in an optional region.", ()),
    ),
    "Configuration, regions and branches: where the sender address is set.",
)


def _organization(reader: Reader, value: object, pos: Pos, where: str) -> Organization:
    entry = ORGANIZATION_TABLE.read(reader, value, pos, where)
    configuration = entry.get("configuration", Configuration())
    return Organization(configuration=configuration, regions=entry["regions"], branches=entry["branches"])


ORGANIZATION = Kind(_organization, ORGANIZATION_TABLE.schema())

SYNC_TABLE = Table(
    (
        Field(
            "provider",
            PROVIDER_NAME,
            "microsoft365, google, a provider declared under providers:, or any other (unsupported) name.",
            REQUIRED,
        ),
        Field("synced", INITIAL_TIME, "Last (re)sync, not after start.", REQUIRED),
        Field("last_login", INITIAL_TIME, "Last login, not after start (counts as a token refresh)."),
        Field("password_changed", INITIAL_TIME, "Last password change, not after start."),
    ),
    "The user's mailbox sync; without it the user sends on the SMTP path.",
)


def _sync(reader: Reader, value: object, pos: Pos, where: str) -> Sync:
    entry = SYNC_TABLE.read(reader, value, pos, where)
    return Sync(
        provider=entry["provider"],
        synced=entry["synced"],
        last_login=entry["last_login"],
        password_changed=entry["password_changed"],
    )


SYNC = Kind(_sync, SYNC_TABLE.schema())

USER_TABLE = Table(
    (
        Field("id", ID, "The user's id.", REQUIRED),
        Field("email", ADDRESS, "The user's address.", REQUIRED),
        Field("active", BOOLEAN, "Inactive users cannot be senders.", True),
        Field("sync", SYNC, "Mailbox sync; unset: the SMTP path."),
    )
)


def _users(reader: Reader, value: object, pos: Pos, where: str) -> tuple[User, ...]:
    out = []
    for v, p, w in reader.seq(value, pos, where, "a list of users", MAX_ENTITIES):
        entry = USER_TABLE.read(reader, v, p, w)
        ident = entry["id"]
        reader.define(reader.ids.users, ident, entry.vpos("id"), "user")
        out.append(
            User(id=ident, email=entry["email"], active=entry["active"], sync=entry["sync"], loc=reader.loc(entry.pos))
        )
    return tuple(out)


USERS = Kind(_users, list_schema(USER_TABLE.schema(), MAX_ENTITIES))

CONTACT_TABLE = Table(
    (
        Field("id", ID, "The contact's id.", REQUIRED),
        Field(
            "email",
            STRING,
            "Kept exactly as written, stray spaces included (an invalid address is a guide cause, not a load "
            "error); unique across contacts, ignoring case and spaces.",
            REQUIRED,
        ),
        Field("active", BOOLEAN, "Inactive contacts are skipped.", True),
    )
)


def _contacts(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Contact, ...]:
    out = []
    emails: dict[str, tuple[str, LineCol]] = {}
    items = reader.items(value, pos, where, "a list of contacts", MAX_ENTITIES)
    table = reader.ids.contacts
    for i, v in enumerate(items):
        row = CONTACT_TABLE.quick_row(reader, v)
        if row is not None:
            ident, email, active = row
            key = email.strip().lower()
            if ident not in table and key not in emails:
                # plainly valid, a new id and a new address: what _contact does, with no message to prepare
                assert isinstance(v, YMap)
                table[ident] = value_pos(v, "id")
                if key:
                    emails[key] = (ident, value_pos(v, "email"))
                out.append(Contact(ident, email, active, reader.loc(v.pos)))
                continue
        out.append(_contact(reader, v, reader.item_pos(items, i, pos), f"{where}[{i}]", emails))
    return tuple(out)


def _contact(reader: Reader, value: object, pos: Pos, where: str, emails: dict[str, tuple[str, LineCol]]) -> Contact:
    """One contact through the general path: the first problem in it is the one reported."""
    entry = CONTACT_TABLE.read(reader, value, pos, where)
    ident = entry["id"]
    reader.define(reader.ids.contacts, ident, entry.vpos("id"), "contact")
    email = entry["email"]
    key = email.strip().lower()
    if key:
        first = emails.get(key)
        if first is not None:
            reader.fail(
                entry.vpos("email"),
                f"{entry.sub('email')}: duplicate contact email {short(email.strip())!r}: contact {first[0]!r} "
                f"(line {first[1][0]}) already has it (emails are unique, ignoring case and spaces)",
            )
        emails[key] = (ident, entry.vpos("email"))
    return Contact(ident, email, entry["active"], reader.loc(entry.pos))


CONTACTS = Kind(_contacts, list_schema(CONTACT_TABLE.schema(), MAX_ENTITIES))

PROPERTY_CONTACT_TABLE = Table(
    (
        Field("contact", CONTACT_REF, "A contact id (each contact at most once per property).", REQUIRED),
        Field("email_invoice", BOOLEAN, '"Email Invoice" selected.', False),
        Field("primary", BOOLEAN, "Primary contact.", False),
        Field("billing", BOOLEAN, "Billing contact.", False),
    )
)


def _quick_property_contacts(reader: Reader, value: object) -> object:
    """The whole list when every link is plainly valid and no contact is listed twice, else SLOW."""
    if type(value) is not YSeq or len(value) > MAX_SMALL_LIST:
        return SLOW
    out = []
    seen = set()
    for v in value:
        row = PROPERTY_CONTACT_TABLE.quick_row(reader, v)
        if row is None or row[0] in seen:
            return SLOW
        seen.add(row[0])
        out.append(PropertyContact(*row))
    return tuple(out)


def _property_contacts(reader: Reader, value: object, pos: Pos, where: str) -> tuple[PropertyContact, ...]:
    out = []
    seen: dict[str, Pos] = {}
    items = reader.seq(value, pos, where, "a list of {contact, email_invoice, primary, billing}", MAX_SMALL_LIST)
    for v, p, w in items:
        entry = PROPERTY_CONTACT_TABLE.read(reader, v, p, w)
        contact = entry["contact"]
        if contact in seen:
            reader.fail(
                entry.vpos("contact"),
                f"{entry.sub('contact')}: contact {contact!r} is listed twice "
                f"on this property (first at line {seen[contact].line})",
            )
        seen[contact] = entry.vpos("contact")
        out.append(
            PropertyContact(
                contact=contact,
                email_invoice=entry["email_invoice"],
                primary=entry["primary"],
                billing=entry["billing"],
            )
        )
    return tuple(out)


PROPERTY_CONTACTS = Kind(
    _property_contacts, list_schema(PROPERTY_CONTACT_TABLE.schema(), MAX_SMALL_LIST), quick=_quick_property_contacts
)

PROPERTY_TABLE = Table(
    (
        Field("id", ID, "The property's id.", REQUIRED),
        Field("branch", BRANCH_REF, "The branch the property belongs to.", REQUIRED),
        Field("contacts", PROPERTY_CONTACTS, "The property's contacts and their flags.", ()),
    )
)


def _properties(reader: Reader, value: object, pos: Pos, where: str) -> tuple[Property, ...]:
    out = []
    items = reader.items(value, pos, where, "a list of properties", MAX_ENTITIES)
    table = reader.ids.properties
    for i, v in enumerate(items):
        row = PROPERTY_TABLE.quick_row(reader, v)
        if row is None or row[0] in table:
            out.append(_property(reader, v, reader.item_pos(items, i, pos), f"{where}[{i}]"))
            continue
        assert isinstance(v, YMap)
        ident, branch, contacts = row
        table[ident] = value_pos(v, "id")
        out.append(Property(ident, branch, contacts, reader.loc(v.pos)))
    return tuple(out)


def _property(reader: Reader, value: object, pos: Pos, where: str) -> Property:
    """One property through the general path: the first problem in it is the one reported."""
    entry = PROPERTY_TABLE.read(reader, value, pos, where)
    ident = entry["id"]
    reader.define(reader.ids.properties, ident, entry.vpos("id"), "property")
    branch = entry["branch"]
    contacts = entry["contacts"]
    return Property(ident, branch, contacts, reader.loc(entry.pos))


PROPERTIES = Kind(_properties, list_schema(PROPERTY_TABLE.schema(), MAX_ENTITIES))
