"""A Standard Webhooks receiver on 127.0.0.1 for tests/series.rs.

Usage: webhook_receiver.py SECRET_FILE LOG_FILE FAILURES

Prints its port on the first line of stdout, then serves until stdin closes.
SECRET_FILE is read at each request (the endpoint's secret is known only
once it is registered with this receiver's port). Every POST is verified with the `standardwebhooks` library (PyPI), the
specification's reference implementation; each request is appended to
LOG_FILE as a JSON line: {"webhook_id", "verified", "status", "type"}. The
first FAILURES verified requests are answered 500, the rest 204.
"""

import http.server
import json
import sys
import threading

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret_file, log_file, failures = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
answered = {"verified": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        try:
            event = Webhook(open(secret_file).read().strip()).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            event, verified = None, False
        with lock:
            if not verified:
                status = 400
            elif answered["verified"] < failures:
                status = 500
            else:
                status = 204
            if verified:
                answered["verified"] += 1
            line = {
                "webhook_id": headers.get("webhook-id") or headers.get("Webhook-Id"),
                "verified": verified,
                "status": status,
                "type": event["type"] if event else None,
            }
            with open(log_file, "a") as f:
                f.write(json.dumps(line) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
