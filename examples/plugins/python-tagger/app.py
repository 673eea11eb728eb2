"""Example enricher in Python: tags records by keyword and raises the level
of those that mention a failure.

Configuration (the tenant's pipeline, `"config": {"<name>": {...}}`):
- `rules`: `keyword=category` pairs separated by commas, matched
  case-insensitively against the message; the first match sets the
  `category` attribute (default `timeout=network,disk=storage,denied=security`);
- `escalate`: words that raise an INFO/DEBUG/TRACE record to WARN
  (default `failed,exception`).

Built with componentize-py against wit/ (world `enricher`): see
docs/PLUGINS.md. This proves the WIT contract is language-neutral.
"""

import wit_world
from wit_world.imports import host
from wit_world.imports.types import Level

import loggerhub_plugin as lh
import tagger


class WitWorld(wit_world.WitWorld):
    def enrich(self, batch: bytes) -> bytes:
        rules = tagger.parse_rules(host.config("rules") or tagger.DEFAULT_RULES)
        escalate = tagger.parse_words(host.config("escalate") or tagger.DEFAULT_ESCALATE)
        records = tagger.tag(lh.decode(batch), rules, escalate)
        host.log(Level.DEBUG, f"tagged {len(records)} records")
        return lh.encode(records)
