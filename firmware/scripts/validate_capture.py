#!/usr/bin/env python3
"""Validate captured MQTT traffic against the contract.

Each line of the capture is `<topic> <payload>` (mosquitto_sub -F '%t %p'). The topic is matched
against contract/topics.yaml and the payload validated with contract/schemas/<schema>.schema.json.
Exit 1 if a message matches no topic row, fails its schema, or nothing was captured.

usage: validate_capture.py CONTRACT_DIR CAPTURE_FILE
"""
import json
import os
import re
import sys

import jsonschema


def rows(contract_dir):
    out = []
    with open(os.path.join(contract_dir, "topics.yaml"), encoding="utf-8") as f:
        for line in f:
            if "property:" not in line:
                continue
            pattern = re.search(r'pattern: "([^"]+)"', line).group(1)
            schema = re.search(r"schema: *([A-Za-z0-9_-]+)", line).group(1)
            direction = re.search(r"direction: *([a-z-]+)", line).group(1)
            rx = re.escape(pattern)
            rx = rx.replace(r"\{kaiser_id\}", "[^/]+").replace(r"\{esp_id\}", "[A-Za-z0-9_-]{1,32}")
            rx = rx.replace(r"\{gpio\}", r"(?:[0-9]|[1-3][0-9]|4[0-8])")
            out.append((re.compile("^" + rx + "$"), schema, direction))
    return out


def main():
    contract_dir, capture = sys.argv[1], sys.argv[2]
    table = rows(contract_dir)
    validators = {}
    seen, bad = {}, 0
    with open(capture, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            topic, _, payload = line.partition(" ")
            match = [(s, d) for rx, s, d in table if rx.match(topic)]
            if not match:
                print(f"UNKNOWN TOPIC {topic}")
                bad += 1
                continue
            if payload == "" and any(s == "null" for s, _ in match):
                continue  # retained will cleared by the server
            schema = next(s for s, _ in match if s != "null")
            if schema not in validators:
                with open(os.path.join(contract_dir, "schemas", schema + ".schema.json"), encoding="utf-8") as sf:
                    doc = json.load(sf)
                validators[schema] = jsonschema.validators.validator_for(doc)(doc)
            try:
                data = json.loads(payload)
            except json.JSONDecodeError as e:
                print(f"INVALID JSON on {topic}: {e}")
                bad += 1
                continue
            errors = list(validators[schema].iter_errors(data))
            for e in errors[:3]:
                print(f"SCHEMA {schema} on {topic}: {e.message[:200]}")
            bad += 1 if errors else 0
            seen[schema] = seen.get(schema, 0) + 1
    total = sum(seen.values())
    print("validated by schema: " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))
    print(f"{total} messages validated, {bad} invalid")
    return 1 if bad or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
