#!/usr/bin/env python3
"""Validate every golden vector contract/vectors/<schema>/<case>.json against
contract/schemas/<schema>.schema.json. usage: validate_vectors.py CONTRACT_DIR"""
import glob
import json
import os
import sys

import jsonschema


def main():
    contract = sys.argv[1]
    total, bad = 0, 0
    for folder in sorted(glob.glob(os.path.join(contract, "vectors", "*"))):
        if not os.path.isdir(folder):
            continue
        name = os.path.basename(folder)
        schema_path = os.path.join(contract, "schemas", name + ".schema.json")
        if not os.path.exists(schema_path):
            print(f"NO SCHEMA for vectors/{name}")
            bad += 1
            continue
        with open(schema_path, encoding="utf-8") as f:
            schema = json.load(f)
        validator = jsonschema.validators.validator_for(schema)(schema)
        for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
            total += 1
            with open(path, encoding="utf-8") as f:
                errors = list(validator.iter_errors(json.load(f)))
            for e in errors[:3]:
                print(f"{os.path.relpath(path, contract)}: {e.message[:200]}")
            bad += 1 if errors else 0
    print(f"{total} vectors validated, {bad} invalid")
    return 1 if bad or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
