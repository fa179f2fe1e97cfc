"""Writes the nginx configuration of a static site from its static.json.

python3 nginx_conf.py BUILD_DIR > nginx.conf.tmpl

static.json (all keys optional), as Heroku's static buildpack reads it:

  root          the directory to serve, relative to the app: default
                "public_html" if it exists, else "public" if it exists,
                else the app itself ("."). Dotfiles are never served.
  clean_urls    true: /about serves about.html.
  routes        {"/app/**": "index.html"}: a path that matches no file
                and matches a glob gets that file (a single-page app's
                fallback). "*" matches within one path segment, "**"
                across segments.
  redirects     {"/old": {"url": "/new", "status": 301}}
  headers       {"/assets/**": {"Cache-Control": "public, max-age=31536000, immutable"}}
  https_only    true: requests the router got over plain HTTP are
                redirected to HTTPS.
  error_page    "404.html": served (status 404) for a missing path.

The port is left as __PORT__ and the worker count as __WORKERS__: the
dyno's start script fills them in. Errors go to stderr, exit status 1.
"""
import json
import os
import re
import sys

TYPES = {
    "text/html": "html htm",
    "text/css": "css",
    "text/plain": "txt",
    "text/xml": "xml",
    "text/markdown": "md",
    "text/csv": "csv",
    "application/javascript": "js mjs",
    "application/json": "json map",
    "application/manifest+json": "webmanifest",
    "application/wasm": "wasm",
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "image/svg+xml": "svg svgz",
    "image/png": "png",
    "image/jpeg": "jpg jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/x-icon": "ico",
    "font/woff": "woff",
    "font/woff2": "woff2",
    "font/ttf": "ttf",
    "font/otf": "otf",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "video/mp4": "mp4",
    "video/webm": "webm",
}

GZIP_TYPES = ("text/css text/plain text/xml text/markdown text/csv application/javascript "
              "application/json application/manifest+json application/wasm application/rss+xml "
              "application/atom+xml image/svg+xml image/x-icon")


def fail(msg):
    sys.stderr.write("static.json: %s\n" % msg)
    sys.exit(1)


def quote(s):
    """An nginx string literal of a value: a $ stays a $."""
    if any(c in s for c in "\n\r\0\\"):
        fail("%r: values may not contain newlines or backslashes" % s)
    return '"' + s.replace('"', '\\"').replace("$", "${dollar}") + '"'


PATH_CHARS = r"^/[A-Za-z0-9._~/%+@,;=:!-]*$"


def literal_path(p, what):
    """A path nginx takes literally (no variables), quoted."""
    if not isinstance(p, str) or not re.match(PATH_CHARS, p):
        fail("%s %r: a path starts with / and has only URL path characters" % (what, p))
    return '"' + p + '"'


def glob_regex(glob):
    """The regular expression of a path glob as a quoted map key
    ("~^...$"). Globs are made of URL path characters and *, so the
    result needs no escapes."""
    if not isinstance(glob, str) or not re.match(r"^/[A-Za-z0-9._~/*%+@,;=:!-]*$", glob):
        fail("%r: a path glob starts with / and has only URL path characters and *" % (glob,))
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out += ".*"
            i += 2
        elif glob[i] == "*":
            out += "[^/]*"
            i += 1
        elif glob[i] in ".+":
            out += "[" + glob[i] + "]"
            i += 1
        else:
            out += glob[i]
            i += 1
    return '"~^' + out + '$"'


def site_path(build, rel, what):
    """A path inside the served root, for routes and the error page."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        fail("%s must be a file name" % what)
    p = "/" + rel.lstrip("/")
    if ".." in p.split("/"):
        fail("%s %r may not use .." % (what, rel))
    literal_path(p, what)
    return p


def main(build):
    cfg = {}
    path = os.path.join(build, "static.json")
    if os.path.isfile(path) and not os.path.islink(path):
        try:
            with open(path) as f:
                cfg = json.load(f)
        except ValueError as e:
            fail("not valid JSON: %s" % e)
        if not isinstance(cfg, dict):
            fail("must be a JSON object")
    known = {"root", "clean_urls", "routes", "redirects", "headers", "https_only", "error_page"}
    for k in cfg:
        if k not in known:
            sys.stderr.write("static.json: ignoring unknown key %r\n" % k)

    root = cfg.get("root")
    if root is None:
        root = next((d for d in ("public_html", "public") if os.path.isdir(os.path.join(build, d))), ".")
    if not isinstance(root, str) or root.startswith("/") or ".." in root.split("/"):
        fail("root must be a directory inside the app")
    root = os.path.normpath(root)
    served = "/app" if root == "." else "/app/" + root
    if not os.path.isdir(os.path.join(build, root)):
        fail("root %r is not a directory of the app" % root)

    lines = []
    w = lines.append
    w("daemon off;")
    w("worker_processes __WORKERS__;")
    w("pid nginx.pid;")
    w("error_log stderr warn;")
    w("events { worker_connections 1024; }")
    w("http {")
    w("  access_log off;")
    w("  server_tokens off;")
    w("  sendfile on;")
    w("  tcp_nopush on;")
    w("  keepalive_timeout 65s;")
    for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        w("  %s_temp_path tmp/%s;" % (t, t))
    w("  types {")
    for mime, exts in TYPES.items():
        w("    %s %s;" % (mime, exts))
    w("  }")
    w("  default_type application/octet-stream;")
    w("  charset utf-8;")
    w("  charset_types text/css text/plain text/xml text/markdown application/javascript application/json image/svg+xml;")
    w("  gzip on;")
    w("  gzip_vary on;")
    w("  gzip_proxied any;")
    w("  gzip_min_length 256;")
    w("  gzip_types %s;" % GZIP_TYPES)
    # A literal $ in a value: nginx has no escape for it.
    w('  geo $dollar { default "$"; }')

    # The request's own path, fixed before any internal redirect.
    headers = cfg.get("headers") or {}
    if not isinstance(headers, dict):
        fail("headers must be an object of path globs")
    names = {}
    for glob, hs in headers.items():
        if not isinstance(hs, dict):
            fail("headers[%r] must be an object of header names and values" % glob)
        for name, value in hs.items():
            if not re.match(r"^[A-Za-z0-9-]+$", name) or not isinstance(value, str):
                fail("headers[%r]: %r must be a header name with a string value" % (glob, name))
            names.setdefault(name, []).append((glob_regex(glob), value))
    hvars = {}
    for i, (name, rules) in enumerate(sorted(names.items())):
        var = "$grid_header_%d" % i
        hvars[name] = var
        w("  map $grid_path %s {" % var)
        for rx, value in rules:
            w("    %s %s;" % (rx, quote(value)))
        w('    default "";')
        w("  }")

    routes = cfg.get("routes") or {}
    if not isinstance(routes, dict):
        fail("routes must be an object of path globs and files")
    w("  map $grid_path $grid_route {")
    for glob, target in routes.items():
        w("    %s %s;" % (glob_regex(glob), quote(site_path(build, target, "routes[%r]" % glob))))
    w('    default "";')
    w("  }")

    w("  server {")
    w("    listen __PORT__ default_server;")
    w("    root %s;" % literal_path(served, "root"))
    w("    index index.html;")
    w("    absolute_redirect off;")
    w("    set $grid_path $uri;")
    if cfg.get("https_only"):
        w('    if ($http_x_forwarded_proto = "http") { return 301 https://$host$request_uri; }')
    redirects = cfg.get("redirects") or {}
    if not isinstance(redirects, dict):
        fail("redirects must be an object of paths")
    for src, r in redirects.items():
        if not isinstance(r, dict) or not isinstance(r.get("url"), str):
            fail('redirects[%r] must be {"url": "...", "status": 301}' % src)
        status = r.get("status", 301)
        if status not in (301, 302, 303, 307, 308):
            fail("redirects[%r]: status must be 301, 302, 303, 307 or 308" % src)
        w("    location = %s { return %d %s; }" % (literal_path(src, "redirect"), status, quote(r["url"])))
    for name, var in sorted(hvars.items()):
        w("    add_header %s %s always;" % (name, var))
    w("    location ~ /\\. { return 404; }")
    tries = "$uri $uri.html $uri/" if cfg.get("clean_urls") else "$uri $uri/"
    w("    location / { try_files %s @grid_route; }" % tries)
    w("    location @grid_route {")
    w('      if ($grid_route = "") { return 404; }')
    for name, var in sorted(hvars.items()):
        w("      add_header %s %s always;" % (name, var))
    w("      rewrite ^ $grid_route break;")
    w("    }")
    if cfg.get("error_page"):
        w("    error_page 404 %s;" % quote(site_path(build, cfg["error_page"], "error_page")))
    w("  }")
    w("}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
