"""How the runner fleet's own tooling wrote its AMI manifests, before kiln.

The fixtures next to this script are its output; kiln's tests check that
kiln writes the same bytes. It builds the manifest with dicts in the order
of its fields, keys and regions sorted, and writes it with json.dump and
indent=2: two-space indent, ", " never used at line ends, ": " after keys,
every non-ASCII character escaped (ensure_ascii), no newline at the end.
Deprecation times are written as DescribeImages returns them
(2026-07-17T16:19:49.000Z).

    python3 write_manifest.py v1 < entries.json > runners-v1.json
"""
import json
import sys


def v1(entries):
    out = {}
    for e in sorted(entries, key=lambda e: (e["use_case"], e["region"])):
        out.setdefault(e["use_case"], {})[e["region"]] = {
            "id": e["id"],
            "name": "ubuntu",
            "image_use_case": e["use_case"],
            "region": e["region"],
            "architecture": e["architecture"],
            "deprecation_time": e["deprecation_time"],
            "public": e["public"],
        }
    return out


ARCH = {"x86_64": "amd64", "arm64": "arm64"}


def v2(entries):
    out = {}
    keyed = [(f'{e["os"]}-{ARCH[e["architecture"]]}-{e["role"]}', e) for e in entries]
    for key, e in sorted(keyed, key=lambda p: (p[0], p[1]["region"])):
        out.setdefault(key, {})[e["region"]] = {
            "id": e["id"],
            "name": "ubuntu",
            "region": e["region"],
            "os": e["os"],
            "arch": ARCH[e["architecture"]],
            "role": e["role"],
            "deprecation_time": e["deprecation_time"],
            "public": e["public"],
        }
    return out


if __name__ == "__main__":
    build = {"v1": v1, "v2": v2}[sys.argv[1]]
    json.dump(build(json.load(sys.stdin)), sys.stdout, indent=2)
