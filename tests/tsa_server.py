#!/usr/bin/env python3
"""A local RFC 3161 time-stamping authority for the tests: OpenSSL's `ts`
behind Python's http.server, on 127.0.0.1.

    tsa_server.py DIR

Creates in DIR a CA (ca.pem) and a TSA certificate it signs (extended key
usage timeStamping, critical), then answers every POST of an
application/timestamp-query with `openssl ts -reply`. Prints `READY PORT`
once it listens; `DIR/requests` counts the requests answered.
"""
import http.server
import os
import subprocess
import sys
import tempfile

DIR = sys.argv[1]


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def setup():
    p = lambda name: os.path.join(DIR, name)
    with open(p("tsa.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=vouch test TSA root")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("tsa.key"), "-out", p("tsa.csr"), "-subj", "/CN=vouch test TSA")
    run("openssl", "x509", "-req", "-in", p("tsa.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-out", p("tsa.pem"), "-days", "2", "-extfile", p("tsa.ext"))
    with open(p("ts.cnf"), "w") as f:
        f.write(f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {DIR}
serial = {DIR}/tsaserial
signer_cert = {DIR}/tsa.pem
signer_key = {DIR}/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.1.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
    with open(p("tsaserial"), "w") as f:
        f.write("01\n")
    with open(p("requests"), "w") as f:
        f.write("0")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        if length > 4096 or self.headers.get("content-type") != "application/timestamp-query":
            self.send_error(400)
            return
        query = self.rfile.read(length)
        with tempfile.TemporaryDirectory() as t:
            q, r = os.path.join(t, "q.tsq"), os.path.join(t, "r.tsr")
            with open(q, "wb") as f:
                f.write(query)
            done = subprocess.run(["openssl", "ts", "-reply", "-config", os.path.join(DIR, "ts.cnf"),
                                   "-queryfile", q, "-out", r], capture_output=True)
            if done.returncode != 0:
                self.send_error(500)
                return
            body = open(r, "rb").read()
        count = int(open(os.path.join(DIR, "requests")).read()) + 1
        with open(os.path.join(DIR, "requests"), "w") as f:
            f.write(str(count))
        self.send_response(200)
        self.send_header("content-type", "application/timestamp-reply")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    setup()
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
