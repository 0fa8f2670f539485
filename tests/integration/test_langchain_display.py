"""Rich display: a result renders as an HTML gallery, with web text escaped."""

from __future__ import annotations

from html import escape
from pathlib import Path

from langchain_qwen_imagesearch import ImageHit, ImageSearchResult, QwenImageSearch
from langchain_qwen_imagesearch.server.testing import TestingServer


def test_a_real_result_renders_as_a_gallery_linked_to_its_sources(
    catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    result = QwenImageSearch().invoke({"image": catalog_photo, "query": "who is this?"})

    html = result._repr_html_()

    hit = result.hits[0]
    assert f'<img src="{escape(hit.url, quote=True)}"' in html
    link = f'<a href="{escape(hit.url, quote=True)}" target="_blank" rel="noopener noreferrer">'
    assert f"{link}{hit.title}</a>" in html
    assert "<b>Query:</b> who is this?" in html
    assert "1 image_search call(s)" in html


def test_titles_urls_and_answers_from_the_web_are_escaped() -> None:
    result = ImageSearchResult(
        hits=[
            ImageHit(
                index=1,
                title='<script>alert("t")</script>',
                url='https://a.example/x.jpg?a=1&b="2"',
            ),
            ImageHit(index=2, title="Evil", url="javascript:alert(1)"),
        ],
        answer="<b>bold</b> claim",
        query="<i>q</i>",
    )

    html = result._repr_html_()

    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'src="https://a.example/x.jpg?a=1&amp;b=&quot;2&quot;"' in html
    assert 'href="javascript:' not in html and 'src="javascript:' not in html
    assert "2. Evil (javascript:alert(1))" in html
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in html
    assert "&lt;i&gt;q&lt;/i&gt;" in html


def test_an_empty_result_says_so() -> None:
    assert "No matching images were found." in ImageSearchResult()._repr_html_()
