"""The server room: an HTTP app that speaks the Responses API (docs/protocol.md) and does
search by image over a local catalog. It shares only ``langchain_qwen_imagesearch.protocol``
with the client.

Inside: ``http`` (app, routes, auth, rendering) hands each request to the ``responder``
(validate -> load inputs -> search -> answer), which asks the search ``engine`` (descriptors,
vector index, hit rule) over the catalog in the ``store`` (catalog files), and an answer
writer (``answers``) for the inference. ``indexer`` builds catalogs; ``testing`` holds test
doubles that wrap the app from outside.

It needs the ``server`` extra: ``pip install 'langchain-qwen-imagesearch[server]'``.
"""

from langchain_qwen_imagesearch.server.answers import (
    AnswerWriter,
    ChatModelAnswerWriter,
    SummaryAnswerWriter,
)
from langchain_qwen_imagesearch.server.demo import (
    demo_catalog_dir,
    demo_similar_style_query,
    open_demo_catalog,
)
from langchain_qwen_imagesearch.server.engine.catalog import Catalog
from langchain_qwen_imagesearch.server.engine.hit_rule import HitRule, Match
from langchain_qwen_imagesearch.server.http.app import API_PREFIXES, create_app
from langchain_qwen_imagesearch.server.indexer import IndexReport, build_catalog
from langchain_qwen_imagesearch.server.inputs.addresses import AddressPolicy
from langchain_qwen_imagesearch.server.runner import (
    BackgroundServer,
    EmbeddedServer,
    ServerConfigError,
    bound_socket,
    check_bind_address,
    serve,
)
from langchain_qwen_imagesearch.server.store.catalog_files import CatalogError
from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry

__all__ = [
    "API_PREFIXES",
    "AddressPolicy",
    "AnswerWriter",
    "BackgroundServer",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "ChatModelAnswerWriter",
    "EmbeddedServer",
    "HitRule",
    "IndexReport",
    "Match",
    "ServerConfigError",
    "SummaryAnswerWriter",
    "bound_socket",
    "build_catalog",
    "check_bind_address",
    "create_app",
    "demo_catalog_dir",
    "demo_similar_style_query",
    "open_demo_catalog",
    "serve",
]
