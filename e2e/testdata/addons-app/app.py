"""Counts visits in the app's Postgres database and Redis server, through
the psql and redis-cli of the stack, with DATABASE_URL and REDIS_URL.
GET /hit counts one; GET / shows the counts. "app.py migrate", the release
phase, creates the table, as a release phase's migration would. On an operator's shared Redis
the URL's user is not "default", and keys begin with its name and a colon."""
import glob
import os
import subprocess
import sys
from urllib.parse import urlparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PSQL = (sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) or ["psql"])[-1]


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=20)
    return (r.stdout.strip() or r.stderr.strip()).replace("\n", " ")


def pg(*sql):
    args = [PSQL, os.environ["DATABASE_URL"], "-tAq", "-c", "CREATE TABLE IF NOT EXISTS hits (n int)"]
    for s in sql:
        args += ["-c", s]
    return run(*args)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        hit = self.path == "/hit"
        out = []
        if os.environ.get("DATABASE_URL"):
            out.append("pg " + pg(*(["INSERT INTO hits VALUES (1)"] if hit else []), "SELECT count(*) FROM hits"))
        if os.environ.get("REDIS_URL"):
            user = urlparse(os.environ["REDIS_URL"]).username
            key = "hits" if user in (None, "default") else user + ":hits"
            r = run("redis-cli", "-u", os.environ["REDIS_URL"], "--no-auth-warning", "INCR" if hit else "GET", key)
            out.append("redis " + (r or "0"))
        body = ("; ".join(out) or "no add-ons").encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if sys.argv[1:] == ["migrate"]:
    if os.environ.get("DATABASE_URL"):
        sys.exit(subprocess.run([PSQL, os.environ["DATABASE_URL"], "-c", "CREATE TABLE IF NOT EXISTS hits (n int)"], timeout=20).returncode)
    sys.exit(0)
ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
