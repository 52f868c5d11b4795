"""Run a bundled Lambda asset the way Lambda would, in a fresh interpreter that sees only the asset.

    python -I -S tests/infra/bundle_probe.py ASSET_DIR FUNCTION_NAME EVENT_JSON

``-I -S``: no site-packages, no user site, no PYTHONPATH, no script folder; the asset is the only entry
added to ``sys.path`` (the standard library stays, as on Lambda). The probe imports ``handler.py``, calls
``lambda_handler`` with the given event, imports every module that ``shared`` loads lazily (BM25,
stemmer, PDF and HTML parsers, OpenSearch client, SigV4, OpenAI SDK), loads the MiniLM embedder from the
bundled model package and embeds a query. It prints one JSON line; a missing dependency is an error here.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import sysconfig

LAZY_MODULES = (
    "bm25s",
    "Stemmer",
    "pypdf",
    "opensearchpy",
    "requests_aws4auth",
    "openai",
    "anthropic",
    "fastcluster",
    "tokenizers",
    "safetensors.numpy",
    "threadpoolctl",
    "aws_xray_sdk.core",
    "shared.stores.opensearch",
    "shared.loaders",
    "shared.stores.lexical",
)


class Context:
    function_name = "rag-explorer-probe"
    function_version = "$LATEST"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:rag-explorer-probe"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/rag-explorer-probe"
    log_stream_name = "probe"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def main() -> None:
    asset, name, event_file = sys.argv[1:4]
    asset = os.path.realpath(asset)
    sys.path.insert(0, asset)
    spec = importlib.util.spec_from_file_location("handler", os.path.join(asset, "handler.py"))
    assert spec and spec.loader
    handler = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = handler
    spec.loader.exec_module(handler)

    with open(event_file, encoding="utf-8") as f:
        event = json.load(f)
    response = handler.lambda_handler(event, Context())

    for module in LAZY_MODULES:
        importlib.import_module(module)
    from shared.stores.opensearch import sigv4_auth

    sigv4_auth(os.environ["AWS_REGION"])  # requests-aws4auth over botocore's credential chain
    vector = handler.service.embedder.embed_query("How do I reset the index?")

    stdlib = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
    outside = sorted(
        {
            module_name.split(".")[0]
            for module_name, module in list(sys.modules.items())
            if module_name not in ("__main__", "__mp_main__")  # this probe
            and (path := getattr(module, "__file__", None))
            and not os.path.realpath(path).startswith(asset + os.sep)
            and not any(os.path.realpath(path).startswith(root + os.sep) for root in stdlib)
        }
    )
    print(
        json.dumps(
            {
                "function": name,
                "response": response,
                "dimension": len(vector),
                "outside_asset": outside,
                "sys_path": sys.path,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
