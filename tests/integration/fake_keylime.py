#!/usr/bin/env python3
"""A stand-in for a Keylime verifier/registrar as a client sees it, for the tenant's interop
tests: it answers a bodiless request that declares a JSON Content-Type with 400 and an empty
HTML body (what Keylime's servers do), and its GET /version is chosen by --version-mode:
  list     {"current_version": "2.3", "supported_versions": ["2.1", "2.2", "2.3"]}
  current  {"current_version": "2.2"}          (no list)
  broken   400 with an empty HTML body
  future   {"supported_versions": ["3.0"]}
Every request is logged to --log as "METHOD PATH content-type=<value or ->".
Usage: fake_keylime.py --port N --log FILE --version-mode MODE"""
import argparse
import http.server
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--version-mode", default="list")
    a = ap.parse_args()
    versions = {
        "list": {"current_version": "2.3", "supported_versions": ["2.1", "2.2", "2.3"]},
        "current": {"current_version": "2.2"},
        "future": {"supported_versions": ["3.0"]},
    }

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, obj=None):
            body = b"" if obj is None else json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if obj is not None else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            ct = self.headers.get("Content-Type")
            with open(a.log, "a") as f:
                f.write("%s %s content-type=%s\n" % (self.command, self.path, ct or "-"))
            if ct and "json" in ct and not body:
                return self.reply(400)        # Keylime decodes the declared (empty) body and fails
            if self.path == "/version":
                v = versions.get(a.version_mode)
                return self.reply(400) if v is None else self.reply(200, {"code": 200, "status": "Success",
                                                                          "results": v})
            if self.command == "GET" and self.path.endswith("/agents/"):
                return self.reply(200, {"code": 200, "status": "Success", "results": {"uuids": ["a1", "B2"]}})
            if self.command == "DELETE" and "/agents/" in self.path:
                return self.reply(404, {"code": 404, "status": "agent id not found", "results": {}})
            return self.reply(404, {"code": 404, "status": "Not Found", "results": {}})

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), H)
    print("ready", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
