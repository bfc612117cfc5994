"""Reads a registered model back with the official Model Registry Python client.

Usage: python_readback.py URL TOKEN MODEL VERSION
Prints one JSON object: the artifact's uri, model format and custom properties as the client
sees them, so the test can compare them with what register wrote.
"""
import json
import sys
from urllib.parse import urlsplit

from model_registry import ModelRegistry

url, token, model, version = sys.argv[1:5]
parts = urlsplit(url)
registry = ModelRegistry(
    f"{parts.scheme}://{parts.hostname}",
    parts.port,
    author="modelcar-test",
    is_secure=False,
    user_token=token,
)
artifact = registry.get_model_artifact(model, version)
print(json.dumps({
    "uri": artifact.uri,
    "model_format_name": artifact.model_format_name,
    "custom_properties": artifact.custom_properties,
}))
