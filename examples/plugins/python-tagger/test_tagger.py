"""Unit tests of the tagger's logic and of the Python SDK's codec, run
natively: `python3 -m unittest` in this directory, with sdk-plugins/python
on PYTHONPATH (host/tests/sdk.rs runs them)."""

import unittest

import loggerhub_plugin as lh
import tagger


class TaggerTest(unittest.TestCase):
    def test_categories_and_escalation(self):
        records = [
            lh.Record(message="Upstream TIMEOUT", level=lh.INFO),
            lh.Record(message="job failed", level=lh.DEBUG),
            lh.Record(message="fine", level=lh.ERROR),
        ]
        out = tagger.tag(records, tagger.parse_rules("timeout=network, bad , x="), tagger.parse_words("failed"))
        self.assertEqual(out[0].attr("category"), "network")
        self.assertEqual(out[1].level, lh.WARN)
        self.assertIsNone(out[2].attr("category"))
        self.assertEqual(out[2].level, lh.ERROR)


class CodecTest(unittest.TestCase):
    def test_round_trip(self):
        rec = lh.Record(
            id="01J0000000000000000000000A",
            tenant="acme",
            service="web",
            level=lh.FATAL,
            timestamp=-5,
            message="héllo",
            full_log="a\nb",
            language="python",
            attributes=[("k", "v"), ("é", "ü")],
        )
        self.assertEqual(lh.decode(lh.encode([rec, lh.Record()])), [rec, lh.Record()])

    def test_refuses_malformed_batches(self):
        good = lh.encode([lh.Record(message="x")])
        for bad in [b"", b"LHB2" + good[4:], good[:-1], good + b"\x00", good[:8] + b"\xff" + good[9:]]:
            with self.assertRaises(lh.DecodeError):
                lh.decode(bad)


if __name__ == "__main__":
    unittest.main()
