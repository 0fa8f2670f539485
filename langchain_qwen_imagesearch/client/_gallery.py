"""Rich display: a search result as an HTML image gallery (Jupyter calls ``_repr_html_``).

Titles and URLs come from the web, so every one is escaped, and only http(s) URLs become
links or image sources: a ``javascript:`` URL in a hit must not run in the notebook.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from langchain_qwen_imagesearch.results import ImageHit, ImageSearchResult

_STYLE = (
    "<style>"
    ".qis-gallery{display:flex;flex-wrap:wrap;gap:8px;margin:0;padding:0}"
    ".qis-gallery figure{width:160px;margin:0}"
    ".qis-gallery img{width:160px;height:120px;object-fit:cover;border-radius:4px}"
    ".qis-gallery figcaption{font-size:12px;overflow-wrap:anywhere}"
    "</style>"
)


def result_gallery_html(result: ImageSearchResult) -> str:
    """The hits as a gallery of thumbnails with titles linked to their sources, the answer
    below, and a line of usage."""
    parts = [_STYLE, '<div class="qis-result">']
    if result.query:
        parts.append(f"<p><b>Query:</b> {escape(result.query)}</p>")
    if result.hits:
        figures = "".join(_figure(n, hit) for n, hit in enumerate(result.hits, start=1))
        parts.append(f'<div class="qis-gallery">{figures}</div>')
    else:
        parts.append("<p><i>No matching images were found.</i></p>")
    if result.answer:
        parts.append(f'<p style="white-space:pre-wrap">{escape(result.answer)}</p>')
    parts.append(f"<p><small>{escape(_usage_line(result))}</small></p></div>")
    return "".join(parts)


def _figure(number: int, hit: ImageHit) -> str:
    title = escape(hit.title or "(untitled)")
    if not _is_web_url(hit.url):
        return f"<figure><figcaption>{number}. {title} ({escape(hit.url)})</figcaption></figure>"
    url = escape(hit.url, quote=True)
    link = f'<a href="{url}" target="_blank" rel="noopener noreferrer">'
    return (
        f'<figure>{link}<img src="{url}" alt="{escape(hit.title, quote=True)}" '
        f'loading="lazy"></a><figcaption>{number}. {link}{title}</a></figcaption></figure>'
    )


def _is_web_url(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in ("http", "https")


def _usage_line(result: ImageSearchResult) -> str:
    usage = result.usage
    pieces = [f"{len(result.hits)} hits", f"{usage.image_search_calls} image_search call(s)"]
    if usage.total_tokens is not None:
        pieces.append(f"{usage.total_tokens:,} tokens")
    if result.model:
        pieces.append(result.model)
    return " · ".join(pieces)
