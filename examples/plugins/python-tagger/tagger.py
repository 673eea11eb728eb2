"""The python-tagger example's logic, free of WebAssembly imports so that
it runs natively in unit tests (test_tagger.py); app.py exports it as a
component."""

import loggerhub_plugin as lh

DEFAULT_RULES = "timeout=network,disk=storage,denied=security"
DEFAULT_ESCALATE = "failed,exception"


def parse_rules(text: str) -> list[tuple[str, str]]:
    rules = []
    for pair in text.split(","):
        keyword, _, category = pair.partition("=")
        if keyword.strip() and category.strip():
            rules.append((keyword.strip().lower(), category.strip()))
    return rules


def parse_words(text: str) -> list[str]:
    return [w.strip().lower() for w in text.split(",") if w.strip()]


def tag(records: list[lh.Record], rules: list[tuple[str, str]], escalate: list[str]) -> list[lh.Record]:
    for rec in records:
        text = rec.message.lower()
        for keyword, category in rules:
            if keyword in text:
                rec.set_attr("category", category)
                break
        if rec.level < lh.WARN and any(word in text for word in escalate):
            rec.level = lh.WARN
        rec.set_attr("tagged_by", "python")
    return records
