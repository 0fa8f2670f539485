"""Rich display: search hits as an HTML image gallery (Jupyter calls ``_repr_html_``).

Titles and URLs come from the web, so every one is escaped, and only http(s) URLs become
links or image sources: a ``javascript:`` URL in a hit must not run in the notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import urlsplit

_STYLE = (
    "<style>"
    ".qis-gallery{display:flex;flex-wrap:wrap;gap:8px;margin:0;padding:0}"
    ".qis-gallery figure{width:160px;margin:0}"
    ".qis-gallery img{width:160px;height:120px;object-fit:cover;border-radius:4px}"
    ".qis-gallery figcaption{font-size:12px;overflow-wrap:anywhere}"
    "</style>"
)


def gallery_html(
    *, query: str | None, hits: Sequence[tuple[str, str]], answer: str, footer: str
) -> str:
    """The hits (title, URL) as thumbnails with titles linked to their sources, numbered from
    1, the answer below, and a footer line."""
    parts = [_STYLE, '<div class="qis-result">']
    if query:
        parts.append(f"<p><b>Query:</b> {escape(query)}</p>")
    if hits:
        figures = "".join(_figure(n, title, url) for n, (title, url) in enumerate(hits, start=1))
        parts.append(f'<div class="qis-gallery">{figures}</div>')
    else:
        parts.append("<p><i>No matching images were found.</i></p>")
    if answer:
        parts.append(f'<p style="white-space:pre-wrap">{escape(answer)}</p>')
    parts.append(f"<p><small>{escape(footer)}</small></p></div>")
    return "".join(parts)


def _figure(number: int, title: str, url: str) -> str:
    shown_title = escape(title or "(untitled)")
    if not _is_web_url(url):
        return f"<figure><figcaption>{number}. {shown_title} ({escape(url)})</figcaption></figure>"
    quoted_url = escape(url, quote=True)
    link = f'<a href="{quoted_url}" target="_blank" rel="noopener noreferrer">'
    return (
        f'<figure>{link}<img src="{quoted_url}" alt="{escape(title, quote=True)}" '
        f'loading="lazy"></a><figcaption>{number}. {link}{shown_title}</a></figcaption></figure>'
    )


def _is_web_url(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")
