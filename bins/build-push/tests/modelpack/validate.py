"""Validates a ModelPack config (argv[2]) against the model-spec JSON schema (argv[1]).

Exit 0 when valid; otherwise prints every error and exits 1.
"""
import json
import sys

from jsonschema import Draft202012Validator

schema = json.load(open(sys.argv[1]))
config = json.load(open(sys.argv[2]))
validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
for error in errors:
    print(f"{'/'.join(map(str, error.path)) or '(root)'}: {error.message}")
sys.exit(1 if errors else 0)
