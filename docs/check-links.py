#!/usr/bin/env python3
"""Fails on a broken internal link of the built book: every relative `<a href>` must name a file of the book and,
with `#anchor`, an `id` in that file. Links to other sites are not followed.

    python3 docs/check-links.py target/book     # `make docs` runs it after `mdbook build`
"""
import html.parser
import pathlib
import sys
import urllib.parse


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.links.append((attrs["href"], self.getpos()[0]))


def parse(path, cache={}):
    if path not in cache:
        page = Page()
        page.feed(path.read_text(encoding="utf-8"))
        cache[path] = page
    return cache[path]


def main(root):
    root = pathlib.Path(root).resolve()
    pages = sorted(root.rglob("*.html"))
    if not pages:
        sys.exit(f"{root}: no HTML pages (build the book first)")
    broken = []
    for path in pages:
        for href, line in parse(path).links:
            url = urllib.parse.urlsplit(href)
            if url.scheme or url.netloc or href.startswith("javascript:"):
                continue
            target = path if not url.path else (path.parent / urllib.parse.unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(root)}:{line}: {href}"
            if root not in target.parents and target != root:
                broken.append(f"{where}: leaves the book (link a repository file as `code`, not a link)")
            elif not target.is_file():
                broken.append(f"{where}: no such page")
            elif url.fragment and target.suffix == ".html":
                if urllib.parse.unquote(url.fragment) not in parse(target).ids:
                    broken.append(f"{where}: no such anchor in {target.relative_to(root)}")
    for b in broken:
        print(b, file=sys.stderr)
    if broken:
        sys.exit(f"{len(broken)} broken link(s) in the book")
    print(f"{len(pages)} pages, every internal link resolves")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/book")
