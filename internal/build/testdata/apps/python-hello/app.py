"""A web app whose one dependency comes from a wheel shipped with it."""
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import greet


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s; venv %s\n" % (greet.hello(), sys.prefix)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
