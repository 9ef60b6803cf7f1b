#!/usr/bin/env python3
"""Shrink a run record into a test fixture: keep every step and result, cut each
port's raw pulses to the first 50 samples (the plots only need a few)."""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    record = json.load(f)
for step in record["steps"]:
    for port in step["ports"]:
        port["pulses"] = port["pulses"][:50]
with open(dst, "w") as f:
    json.dump(record, f, indent=1, ensure_ascii=False)
    f.write("\n")
