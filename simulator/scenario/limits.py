"""Every size limit of the scenario loader, in one place (documented in docs/scenario-format.md, "Limits").

Each limit exists so that an absurd or hostile file ends quickly with a located
:class:`~simulator.scenario.errors.ScenarioError` instead of gigabytes of memory, minutes of
CPU or a ``RecursionError``. They are far above anything a real scenario needs: the DESIGN §6
benchmark (1,000,000 invoices in 1,000 compact batches) is about 240 KB and 30,000 YAML nodes.
"""

from __future__ import annotations

#: Bytes in a scenario file, checked with ``stat`` before reading (and while reading, for
#: pipes and devices). 64 MiB of YAML is ~1.3 million explicit invoice lines — already past
#: what validates in seconds; compact batches describe millions of invoices in one line.
MAX_FILE_BYTES = 64 * 2**20

#: Scalars, lists and mappings written out in one file. The composed tree costs ~280 bytes a
#: value (the value, its position, its parent's slot), so 2 million values is ~0.6 GB and a few
#: seconds; 64 MiB of ``[a,a,a,...]`` would otherwise be 30 million values and 8 GB before
#: validation starts. 200,000 explicit invoices are 1.4 million values.
MAX_NODES = 2_000_000

#: Invoices written out one by one, across all batches. Each costs ~1.2 KB while loading (7
#: YAML values with positions, then an Invoice); 200,000 is ~12 MiB of YAML and ~250 MB. The
#: compact form has no such cost.
MAX_EXPLICIT_INVOICES = 200_000

#: Nesting of YAML lists and mappings. Scenarios nest at most ~6 levels; the cap keeps every
#: tree walk (ours and the caller's) far from Python's recursion limit.
MAX_DEPTH = 64

#: Characters in one scalar (a string, number, key). The longest legitimate values are
#: descriptions and TXT records, a few KB; a 50 MB id or number is a broken or hostile file.
MAX_SCALAR_CHARS = 65_536

#: Items in any one YAML list (explicit invoices of one batch, timeline, ...); the section
#: limits below are lower where the engine pays per item.
MAX_LIST_ITEMS = 1_000_000

#: Keys in one YAML mapping. Scenario mappings have at most ~20 keys (providers: a handful).
MAX_MAPPING_KEYS = 10_000

#: YAML nodes that aliases (``*a``) and merge keys (``<<: *a``) may add beyond what is written
#: out. The composer shares aliased values instead of copying them, but validation walks
#: what a reference points at, so an alias bomb ("billion laughs") would cost its expanded
#: size. Real files use aliases for a few shared settings: thousands of nodes.
MAX_ALIAS_NODES = 1_000_000

#: Invoices across all batches (compact counts plus explicit invoices). The engine keeps
#: ~420 bytes per email plus its recipients: 5 million emails is ~2-3 GB of state, the
#: most one run on a developer machine holds; beyond it, split the run (e.g. ``mailsim sweep``).
MAX_TOTAL_INVOICES = 5_000_000

#: Items per section list, where one item costs the engine more than memory.
MAX_TIMELINE_EVENTS = 100_000  # each is a scheduled SimPy event and a trace line
MAX_FAULTS = 1_000  # every fault is consulted on every delivery attempt
MAX_EXPECTATIONS = 10_000  # each is evaluated against the run's observed states
MAX_ENTITIES = 100_000  # users, contacts, properties, batches, regions, branches
MAX_DNS_RECORDS = 10_000  # the zone is rebuilt on every dns_set/dns_delete
MAX_MAILBOX_DOMAINS = 10_000
MAX_SMALL_LIST = 1_000  # tags, retry_schedule, sending_ips, roles, a property's contacts, ...

#: Queue polls in a run with an explicit ``until`` (until / settings.queue_poll). Each poll costs
#: the engine ~10 µs even when nothing can move, so ``until: +3650d`` with ``queue_poll: 1s``
#: would keep ``mailsim run`` busy for ~20 minutes. 10 million is 19 years of 1-minute polls or
#: 115 days of 1-second ones; a run without ``until`` stops by 30 days anyway.
MAX_QUEUE_POLLS = 10_000_000
