"""moto's own server (`moto_server`'s app, handler and werkzeug server), answering one request at a time.

For `terraform apply/destroy`, which sends up to 20 requests at once: moto's backends are not thread-safe, and
concurrent rule changes on one security group race there (seen: a rule created once reported as a duplicate, a
rule deleted once reported as missing). Connections are still served on threads; only the handling is serialized.

    python deploy_assets_tests/moto_one_request_at_a_time.py -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server does: some responses name the endpoint

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(args.host, args.port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
